// The experiment loader: TOML, `extends` and `--set`, then validation. Input
// "EXPERIMENT[\n----\nBASE[\n----\nASSIGNMENT]...]": the experiment file, a
// file it may extend as "base.toml", and one `--set` assignment per further
// part. Plugins are stand-ins with the built-ins' names and their commonest
// keys (the real ones are shared libraries of the main build).
//
// Property checked: an experiment that loads writes a resolved file
// (experiment.toml of a run) that loads again to the same resolved file.

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "config/experiment.h"
#include "fuzz_util.h"

namespace {

using lumpy::ParamSpec;
using lumpy::ParamSpecs;

template <class T>
lumpy::Factory<T> Refuse() {
  return [](const lumpy::Params&) -> absl::StatusOr<std::shared_ptr<T>> {
    return absl::UnimplementedError("stand-in");
  };
}

lumpy::Registry& StandIns() {
  static lumpy::Registry* registry = [] {
    auto* r = new lumpy::Registry();
    auto must = [](absl::Status st) { if (!st.ok()) std::abort(); };
    must(r->AddMetric("siren", "", {ParamSpec::Int("hidden", "").Default(int64_t{64}).AtLeast(1),
                                    ParamSpec::Int("layers", "").Default(int64_t{3}).AtLeast(1),
                                    ParamSpec::Double("omega0", "").Default(30.0).Greater(0),
                                    ParamSpec::Double("output_init_std", "").Default(0.01).AtLeast(0),
                                    ParamSpec::String("jet", "").Default(std::string("fused"))
                                        .OneOf({"fused", "autograd"})},
                      Refuse<lumpy::MetricModel>()));
    must(r->AddMetric("flrw", "", {ParamSpec::String("scale_factor", "").Default(std::string("lcdm")),
                                   ParamSpec::Double("h0", "").Default(70.0).Greater(0),
                                   ParamSpec::Double("omega_m", "").Default(0.3).AtLeast(0).AtMost(1)},
                      Refuse<lumpy::MetricModel>()));
    must(r->AddLoss("efe_residual", "", lumpy::LossKind::kObjective,
                    {ParamSpec::String("form", "").Default(std::string("mixed")),
                     ParamSpec::String("matter", "").Default(std::string("dust")),
                     ParamSpec::Double("omega_m", "").Default(0.3).AtLeast(0.05).AtMost(1)},
                    Refuse<lumpy::LossTerm>()));
    for (const char* name : {"wec", "lorentzian", "cmb_isotropy"}) {
      must(r->AddLoss(name, "", lumpy::LossKind::kConstraint,
                      {ParamSpec::Double("tolerance", "").Default(0.0).AtLeast(0)},
                      Refuse<lumpy::LossTerm>()));
    }
    must(r->AddLoss("supernova_chi2", "", lumpy::LossKind::kDataset,
                    {ParamSpec::String("data", "").Default(std::string("Pantheon+SH0ES.dat")),
                     ParamSpec::Double("z_min", "").Default(0.0).AtLeast(0),
                     ParamSpec::DoubleList("z_range", "").Optional().Length(2)},
                    Refuse<lumpy::LossTerm>()));
    must(r->AddConstraint("soft_quadratic", "", {ParamSpec::Double("weight", "").Default(1.0).AtLeast(0)},
                          Refuse<lumpy::ConstraintHandler>()));
    must(r->AddConstraint("augmented_lagrangian", "",
                          {ParamSpec::Double("mu0", "").Default(1.0).Greater(0),
                           ParamSpec::Double("lambda0", "").Default(0.0).AtLeast(0),
                           ParamSpec::Int("multiplier_every", "").Default(int64_t{1}).AtLeast(1),
                           ParamSpec::Bool("freeze_multiplier", "").Default(false),
                           ParamSpec::StringList("notes", "").Optional()},
                          Refuse<lumpy::ConstraintHandler>()));
    must(r->AddConstraint("homoscedastic", "", {}, Refuse<lumpy::ConstraintHandler>()));
    must(r->AddCurriculum("uniform", "", {}, Refuse<lumpy::CurriculumWeighter>()));
    must(r->AddCurriculum("spatial_weight_net", "",
                          {ParamSpec::Int("hidden", "").Default(int64_t{16}).AtLeast(1)},
                          Refuse<lumpy::CurriculumWeighter>()));
    return r;
  }();
  return *registry;
}

}  // namespace

namespace lumpy::fuzz {

int ExperimentInput(const uint8_t* data, size_t size) {
  auto parts = lumpy::fuzz::SplitParts(data, size);
  auto file = lumpy::fuzz::WriteScratch("experiment.toml", parts[0]);
  lumpy::fuzz::WriteScratch("base.toml", parts.size() > 1 ? parts[1] : std::string_view());
  std::vector<std::string> overrides;
  for (size_t i = 2; i < parts.size(); ++i) overrides.emplace_back(parts[i]);

  lumpy::Registry& registry = StandIns();
  lumpy::PluginLoader loader(registry);
  auto experiment = lumpy::LoadExperiment(file, overrides, loader, registry);
  if (!experiment.ok()) {
    if (experiment.status().message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  const std::string resolved = lumpy::ToToml(experiment->resolved);
  auto again_file = lumpy::fuzz::WriteScratch("resolved.toml", resolved);
  auto again = lumpy::LoadExperiment(again_file, {}, loader, registry);
  if (!again.ok() || lumpy::ToToml(again->resolved) != resolved) {
    fprintf(stderr, "the resolved file does not load to itself:\n%s\n%s\n", resolved.c_str(),
            again.ok() ? lumpy::ToToml(again->resolved).c_str()
                       : std::string(again.status().message()).c_str());
    std::abort();
  }
  return 0;
}

}  // namespace lumpy::fuzz

#ifdef LUMPY_FUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lumpy::fuzz::ExperimentInput(data, size);
}
#endif
