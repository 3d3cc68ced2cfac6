#include "cli/cli.h"

#include "core/out_of_memory.h"

#include "cli/ablate.h"
#include "cli/exit_status.h"
#include "cli/report.h"
#include "cli/sky.h"

#include <CLI/CLI.hpp>

#include <boost/dll/runtime_symbol_info.hpp>
#include <cmath>
#include <filesystem>
#include <optional>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "config/experiment.h"
#include "loader/plugin_loader.h"
#include "physics/probe.h"
#include "lumpy/build_info.h"
#include "lumpy/ray_tracer.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// What --checkpoint of report and certify takes: the choices of the
// experiment's [report] checkpoint, one list for both.
std::vector<std::string> CheckpointChoices() {
  for (const auto& spec : ReportParams()) {
    if (spec.name() == "checkpoint") return spec.choices();
  }
  return {};
}

// RUN_DIR and --checkpoint of the commands that read a run (report,
// certify, sky).
void AddRunOptions(CLI::App* command, std::string* run_dir, std::string* checkpoint) {
  command->add_option("run_dir", *run_dir, "the run folder")->required();
  command->add_option("--checkpoint", *checkpoint,
                      "final (model.pt), latest, best (the best checkpoint interval) or best_step (the "
                      "single best step's model); default: the experiment's [report] checkpoint")
      ->check(CLI::IsMember(CheckpointChoices()));
}


// A finite number > 0 (CLI11's PositiveNumber lets NaN through: NaN <= 0 is
// false) or >= 0.
CLI::Validator Finite(bool zero_ok) {
  return CLI::Validator(
      [zero_ok](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || v < 0 || (!zero_ok && v == 0)) {
          return absl::StrCat("must be a finite number ", zero_ok ? ">= 0" : "> 0", ", got ", text);
        }
        return "";
      },
      zero_ok ? "FINITE>=0" : "FINITE>0");
}

// The quickstart: installed beside the binary, or in the source tree of a build.
fs::path QuickstartPath() {
  fs::path exe(boost::dll::program_location().string());
  fs::path installed =
      (exe.parent_path() / ".." / "share" / "lumpy" / "experiments" / "quickstart.toml")
          .lexically_normal();
  if (fs::exists(installed)) return installed;
  return fs::path(LUMPY_SOURCE_DIR) / "experiments" / "quickstart.toml";
}

// runs/<name>, or runs/<name>-2, -3, ... so that no earlier run is overwritten.
fs::path DefaultRunDir(const std::string& name) {
  fs::path base = fs::path("runs") / name;
  if (!fs::exists(base)) return base;
  for (int i = 2;; ++i) {
    fs::path candidate = fs::path("runs") / absl::StrCat(name, "-", i);
    if (!fs::exists(candidate)) return candidate;
  }
}

int CommandRun(const std::string& experiment_arg, const std::vector<std::string>& sets,
               const std::string& out, int64_t steps) {
  Registry registry;
  PluginLoader loader(registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  fs::path file = experiment_arg.empty() ? QuickstartPath() : fs::path(experiment_arg);
  std::vector<std::string> overrides = sets;
  if (steps > 0) overrides.push_back(absl::StrCat("runtime.steps=", steps));
  auto exp = LoadExperiment(file, overrides, loader, registry);
  if (!exp.ok()) return ExitStatus(exp.status());
  fs::path run_dir = out.empty() ? DefaultRunDir(exp->name) : fs::path(out);
  ApplyRuntime(*exp);
  auto components = Instantiate(*exp);
  if (!components.ok()) return ExitStatus(components.status());
  if (int rc = ExitStatus(CheckTrainable(*exp, *components))) return rc;
  std::cerr << "lumpy " << LUMPY_VERSION_STRING << ": " << exp->name << " ("
            << exp->runtime.GetInt("steps") << " steps, " << exp->runtime.GetString("dtype")
            << ", " << torch::get_num_threads() << " threads) -> " << run_dir.string()
            << std::endl;
  absl::Status st = Train(*exp, *components, {run_dir, true});
  if (st.ok()) std::cerr << "done: " << (run_dir / "summary.json").string() << std::endl;
  return ExitStatus(st);
}

// Continues RUN_DIR from checkpoints/latest.pt, with the run's own resolved
// experiment; --steps sets a new total.
int CommandResume(const std::string& run_arg, int64_t steps) {
  const fs::path run_dir(run_arg);
  const fs::path file = run_dir / "experiment.toml";
  if (!fs::is_regular_file(file)) {
    std::cerr << run_dir.string()
              << ": not a run folder (no experiment.toml); give the folder `lumpy run` wrote"
              << std::endl;
    return kExitConfig;
  }
  Registry registry;
  PluginLoader loader(registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  std::vector<std::string> overrides;
  if (steps > 0) overrides.push_back(absl::StrCat("runtime.steps=", steps));
  auto exp = LoadExperiment(file, overrides, loader, registry);
  if (!exp.ok()) return ExitStatus(exp.status());
  ApplyRuntime(*exp);
  auto components = Instantiate(*exp);
  if (!components.ok()) return ExitStatus(components.status());
  std::cerr << "lumpy " << LUMPY_VERSION_STRING << ": resuming " << exp->name << " in "
            << run_dir.string() << " up to step " << exp->runtime.GetInt("steps") << std::endl;
  absl::Status st = Train(*exp, *components, {run_dir, true, /*resume=*/true});
  if (st.ok()) std::cerr << "done: " << (run_dir / "summary.json").string() << std::endl;
  return ExitStatus(st);
}

int CommandCheck(const std::vector<std::string>& files, const std::vector<std::string>& sets) {
  Registry registry;
  PluginLoader loader(registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  int worst = kExitOk;
  for (const auto& f : files) {
    auto exp = LoadExperiment(f, sets, loader, registry);
    absl::Status st = exp.status();
    if (exp.ok()) {
      ApplyRuntime(*exp);
      auto components = Instantiate(*exp);
      st = components.ok() ? CheckTrainable(*exp, *components) : components.status();
    }
    if (st.ok()) {
      std::cout << f << ": ok (" << exp->model.entry->name << " metric, "
                << exp->domains.size() << " domain(s), " << exp->losses.size()
                << " loss term(s), " << exp->runtime.GetInt("steps") << " steps)" << std::endl;
    } else {
      worst = std::max(worst, ExitStatus(st));
    }
  }
  return worst;
}

// What probe and distances share: the experiment's metric, on the runtime's
// dtype and device, with a checkpoint's parameters if one is given.
struct LoadedModel {
  std::unique_ptr<Registry> registry = std::make_unique<Registry>();
  std::optional<Experiment> experiment;
  std::optional<Components> components;
  torch::TensorOptions options;
};

int LoadModel(const std::string& experiment, const std::vector<std::string>& sets,
              const std::string& checkpoint, LoadedModel* out) {
  PluginLoader loader(*out->registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  auto exp = LoadExperiment(experiment, sets, loader, *out->registry);
  if (!exp.ok()) return ExitStatus(exp.status());
  ApplyRuntime(*exp);
  auto components = Instantiate(*exp);
  if (!components.ok()) return ExitStatus(components.status());
  out->options = RuntimeOptions(*exp);
  MetricModel& model = *components->model;
  model.to(out->options.device(), out->options.dtype().toScalarType());
  model.eval();
  if (!checkpoint.empty()) {
    std::vector<std::pair<std::string, LossTerm*>> terms;
    for (auto& l : components->losses) terms.push_back({l.spec->name, l.term.get()});
    std::string note;
    if (int rc = ExitStatus(LoadModelCheckpoint(model, checkpoint, exp->model.entry->name, terms, &note))) {
      return rc;
    }
    if (!note.empty()) std::cerr << "note: " << note << std::endl;
  }
  out->experiment = *std::move(exp);
  out->components = *std::move(components);
  return kExitOk;
}

int CommandProbe(const std::string& experiment, const std::vector<std::string>& sets,
                 const std::string& checkpoint, const std::string& points, const std::string& out) {
  LoadedModel loaded;
  if (int rc = LoadModel(experiment, sets, checkpoint, &loaded)) return rc;
  // The efe_residual column is the experiment's own EFE term, if it has one.
  LossTerm* efe = nullptr;
  for (auto& l : loaded.components->losses) {
    if (l.spec->term.entry->name == "efe_residual") {
      efe = l.term.get();
      break;
    }
  }
  std::string warning;
  absl::Status st =
      ProbeToCsv(*loaded.components->model, efe, points, out, loaded.options, &warning);
  if (!warning.empty()) std::cerr << "warning: " << warning << std::endl;
  if (st.ok() && efe == nullptr) {
    std::cerr << "note: the experiment has no efe_residual term; that column is empty" << std::endl;
  }
  return ExitStatus(st);
}

// Luminosity, angular-diameter and Hubble distances and distance moduli at
// the given redshifts, as CSV on standard output (full precision): along the
// reference ray, or (physical mode) along the sky direction RA,DEC.
int CommandDistances(const std::string& experiment, const std::vector<std::string>& sets,
                     const std::string& checkpoint, const std::vector<double>& z,
                     const std::vector<double>& direction, std::string mode) {
  if (mode.empty()) mode = direction.empty() ? "reference" : "physical";
  if (mode == "reference" && !direction.empty()) {
    std::cerr << "--direction: the reference ray always runs along +x from the observer; "
                 "sky directions need --mode physical (the default with --direction)"
              << std::endl;
    return kExitConfig;
  }
  std::vector<double> radec = direction.empty() ? std::vector<double>{0.0, 0.0} : direction;
  if (radec.size() != 2 || !std::isfinite(radec[0]) || !std::isfinite(radec[1]) ||
      std::abs(radec[1]) > 90) {
    std::cerr << "--direction: expected RA,DEC in degrees with |DEC| <= 90, e.g. --direction "
                 "150.1,2.2"
              << std::endl;
    return kExitConfig;
  }
  for (double v : z) {
    if (!(v > 0) || !std::isfinite(v)) {
      std::cerr << "--z: every redshift must be finite and > 0, got " << v << std::endl;
      return kExitConfig;
    }
  }
  LoadedModel loaded;
  if (int rc = LoadModel(experiment, sets, checkpoint, &loaded)) return rc;
  torch::NoGradGuard no_grad;
  auto zt = torch::tensor(z, torch::kFloat64).to(loaded.options);
  RayTracerOptions tracer;
  tracer.hubble_distance = true;
  MetricModel& model = *loaded.components->model;
  SkyDistances traced;
  if (mode == "physical") {
    auto dir = SkyDirections(torch::tensor({radec[0]}), torch::tensor({radec[1]}));
    auto ray_of = torch::zeros({static_cast<int64_t>(z.size())}, torch::kLong);
    traced = TraceSky(model, dir, ray_of, zt, loaded.options, tracer);
  } else {
    traced = TraceReference(model, zt, loaded.options, tracer);
  }
  std::cerr << (mode == "physical" ? "physical ray: " : "reference ray: ") << traced.stop.accepted
            << " steps (" << traced.stop.rejected << " rejected), stopped by "
            << traced.stop.Summary() << std::endl;
  auto d_l = traced.luminosity_distance.to(torch::kFloat64).cpu();
  auto d_a = traced.angular_distance.to(torch::kFloat64).cpu();
  auto d_h = traced.hubble_distance.to(torch::kFloat64).cpu();
  auto reached = traced.reached.cpu();
  std::cout << "z,d_L_mpc,d_A_mpc,d_H_mpc,mu\n";
  std::vector<double> missed;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!reached[i].item<bool>()) {
      std::cout << absl::StrFormat("%.17g,,,,\n", z[i]);
      missed.push_back(z[i]);
      continue;
    }
    const double dl = d_l[i].item<double>();
    std::cout << absl::StrFormat("%.17g,%.17g,%.17g,%.17g,%.17g\n", z[i], dl, d_a[i].item<double>(),
                                 d_h[i].item<double>(), 5 * std::log10(dl) + 25);
  }
  std::cout.flush();
  if (!missed.empty()) {
    std::cerr << "warning: the ray stopped (" << traced.stop.Summary() << ") at z = "
              << traced.z_max.max().item<double>() << " before reaching z = "
              << absl::StrJoin(missed, ", ") << "; those rows are empty" << std::endl;
  }
  return kExitOk;
}

// A mock supernova catalogue in the Pantheon+ format: redshifts log-uniform
// in [z_min, z_max] (sorted), isotropic sky positions, distance moduli from
// the experiment's metric along the reference ray plus Gaussian noise of
// standard deviation sigma (the file's error column), all from one seed.
int CommandMockSn(const std::string& experiment, const std::vector<std::string>& sets,
                  const std::string& checkpoint, const std::string& out, int64_t n, uint64_t seed,
                  double sigma, bool noise, double z_min, double z_max) {
  if (!(z_min > 0 && z_min < z_max && std::isfinite(z_max))) {
    std::cerr << "--z-min/--z-max: need 0 < z-min < z-max, got " << z_min << ", " << z_max << std::endl;
    return kExitConfig;
  }
  if (std::filesystem::exists(out)) {
    std::cerr << out << ": exists; mock-sn never overwrites a file" << std::endl;
    return kExitConfig;
  }
  LoadedModel loaded;
  if (int rc = LoadModel(experiment, sets, checkpoint, &loaded)) return rc;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto u = torch::rand({n}, gen, f64);
  auto z = std::get<0>(torch::sort(z_min * torch::pow(z_max / z_min, u)));
  auto ra = 360.0 * torch::rand({n}, gen, f64);
  auto dec = torch::rad2deg(torch::asin(2.0 * torch::rand({n}, gen, f64) - 1.0));
  auto eps = noise ? sigma * torch::randn({n}, gen, f64) : torch::zeros({n}, f64);
  auto traced = TraceReference(*loaded.components->model, z.to(loaded.options), loaded.options);
  if (!traced.reached.all().item<bool>()) {
    std::cerr << "the reference ray stopped (" << traced.stop.Summary() << ") at z = "
              << traced.z_max.item<double>() << ", below --z-max " << z_max << std::endl;
    return kExitRuntime;
  }
  auto mu = 5.0 * torch::log10(traced.luminosity_distance.to(torch::kFloat64).cpu()) + 25.0 + eps;
  {
    std::ostringstream f;
    // Provenance first ('#' lines are comments to the reader).
    f << "# lumpy mock-sn " << experiment << (checkpoint.empty() ? "" : " --checkpoint " + checkpoint)
      << absl::StrFormat(" --n %d --seed %d --sigma %g%s --z-min %g --z-max %g", n, seed, sigma,
                         noise ? "" : " --no-noise", z_min, z_max);
    for (const auto& s : sets) f << " --set " << s;
    f << "\n# mu from the reference ray of the experiment's metric\n";
    f << "CID zHD zCMB zHEL MU_SH0ES MU_SH0ES_ERR_DIAG IS_CALIBRATOR RA DEC\n";
    for (int64_t i = 0; i < n; ++i) {
      const double zi = z[i].item<double>();
      f << absl::StrFormat("mock%05d %.17g %.17g %.17g %.17g %.17g 0 %.17g %.17g\n", i, zi, zi, zi,
                           mu[i].item<double>(), sigma, ra[i].item<double>(),
                           dec[i].item<double>());
    }
    if (int rc = ExitStatus(WriteAtomically(out, f.str()))) return rc;
  }
  std::cerr << "wrote " << n << " mock supernovae (seed " << seed << ", sigma " << sigma
            << (noise ? "" : ", no noise") << ") to " << out << std::endl;
  return kExitOk;
}

void PrintParams(const ParamSpecs& specs, const std::string& indent) {
  size_t name_w = 4, type_w = 4, def_w = 7, range_w = 5;
  for (const auto& s : specs) {
    name_w = std::max(name_w, s.name().size());
    type_w = std::max(type_w, std::string(ParamTypeName(s.type())).size());
    def_w = std::max(def_w, s.default_value() ? FormatParamValue(*s.default_value()).size() : 8);
    range_w = std::max(range_w, s.RangeText().size());
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - std::min(w, s.size()) + 2, ' '); };
  for (const auto& s : specs) {
    std::cout << indent << pad(s.name(), name_w) << pad(ParamTypeName(s.type()), type_w)
              << pad(s.default_value() ? FormatParamValue(*s.default_value())
                                       : s.optional() ? "optional" : "required",
                     def_w)
              << pad(s.RangeText(), range_w) << s.doc() << "\n";
  }
}

int CommandPlugins() {
  Registry registry;
  PluginLoader loader(registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  std::cout << "Plugins (default folder " << PluginLoader::DefaultPluginDirectory().string()
            << "; add folders with LUMPY_PLUGIN_PATH or [plugins] paths)\n";
  for (PluginKind kind : {PluginKind::kMetric, PluginKind::kLoss, PluginKind::kConstraint,
                          PluginKind::kCurriculum}) {
    std::cout << "\n" << PluginKindName(kind) << " plugins:\n";
    auto entries = registry.List(kind);
    if (entries.empty()) std::cout << "  (none loaded)\n";
    for (const PluginEntry* e : entries) {
      std::cout << "\n  " << e->name;
      if (kind == PluginKind::kLoss) {
        std::cout << (e->loss_kind == LossKind::kConstraint ? "  [constraint: needs a handler]"
                      : e->loss_kind == LossKind::kDataset ? "  [dataset: no domain]"
                                                           : "  [objective]");
      }
      std::cout << "  (" << fs::path(e->library).filename().string() << ")\n    " << e->doc
                << "\n";
      if (e->params.empty()) {
        std::cout << "    (no parameters)\n";
      } else {
        PrintParams(e->params, "    ");
      }
    }
  }
  std::cout << "\nExperiment sections owned by the core:\n";
  for (const auto& [name, specs] : {std::pair<const char*, const ParamSpecs*>{"runtime", &RuntimeParams()},
                                    {"telemetry", &TelemetryParams()},
                                    {"optimizer", &OptimizerParams()},
                                    {"checkpoint", &CheckpointParams()},
                                    {"stopping", &StoppingParams()},
                                    {"certify", &CertifyParams()},
                                    {"report", &ReportParams()}}) {
    std::cout << "\n  [" << name << "]\n";
    PrintParams(*specs, "    ");
  }
  std::cout << std::flush;
  return kExitOk;
}

// An allocation failure (core/out_of_memory.h): what the command was doing,
// and what needs less memory.
int OutOfMemory(const CLI::App& app, const std::string& detail) {
  const auto subcommands = app.get_subcommands();
  const std::string command = subcommands.empty() ? "run" : subcommands.front()->get_name();
  const std::map<std::string, std::string> doing = {
      {"run", "training"},          {"resume", "training"},          {"check", "checking the experiment"},
      {"probe", "probing"},         {"certify", "certifying"},       {"sky", "tracing the sky"},
      {"report", "reporting"},      {"distances", "tracing rays"},   {"mock-sn", "writing a mock catalogue"},
      {"ablate", "running the sweep"}, {"plugins", "loading plugins"}};
  const auto it = doing.find(command);
  std::cerr << "lumpy " << command << ": out of memory while " << (it == doing.end() ? command : it->second)
            << " (" << AllocatorDetail(detail) << "); " << OutOfMemoryAdvice()
            << "; a run folder keeps its last checkpoint (lumpy resume)" << std::endl;
  return kExitRuntime;
}

}  // namespace

int LumpyMain(int argc, char** argv) {
  CLI::App app{
      "lumpy: physics-informed neural networks for the metric of the universe.\n"
      "With no command, trains the quickstart experiment."};
  app.set_version_flag("--version", std::string("lumpy ") + LUMPY_VERSION_STRING);
  app.require_subcommand(0, 1);

  std::string run_experiment, run_out;
  std::vector<std::string> run_sets;
  int64_t run_steps = 0;
  CLI::App* run = app.add_subcommand("run", "train an experiment (default: the quickstart)");
  run->add_option("experiment", run_experiment, "experiment TOML file");
  run->add_option("--set", run_sets, "override one key, e.g. --set loss.wec.constraint.weight=2")
      ->allow_extra_args(false);
  run->add_option("--out", run_out, "run folder (default runs/<name>, never overwritten)");
  run->add_option("--steps", run_steps, "number of optimizer steps (overrides runtime.steps)")
      ->check(CLI::PositiveNumber);

  std::string resume_dir;
  int64_t resume_steps = 0;
  CLI::App* resume = app.add_subcommand(
      "resume", "continue a run from its latest checkpoint (the same trajectory as an unbroken run)");
  resume->add_option("run_dir", resume_dir, "the run folder")->required();
  resume->add_option("--steps", resume_steps, "new total number of steps (default: the run's own)")
      ->check(CLI::PositiveNumber);

  std::vector<std::string> check_files, check_sets;
  CLI::App* check = app.add_subcommand("check", "validate experiments without running them");
  check->add_option("experiments", check_files, "experiment TOML files")->required();
  check->add_option("--set", check_sets, "override one key in every file")->allow_extra_args(false);

  std::string probe_experiment, probe_checkpoint, probe_points, probe_out;
  std::vector<std::string> probe_sets;
  CLI::App* probe = app.add_subcommand(
      "probe", "metric, curvature, EFE residual, Hubble rates and shear at given points");
  probe->add_option("experiment", probe_experiment, "experiment TOML file (its metric)")->required();
  probe->add_option("--checkpoint", probe_checkpoint, "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  probe->add_option("--points", probe_points, "CSV with a header naming t,x,y,z")->required();
  probe->add_option("--out", probe_out, "output CSV: " + absl::StrJoin(ProbeColumns(), ","))->required();
  probe->add_option("--set", probe_sets, "override one key, e.g. --set runtime.dtype=float32")
      ->allow_extra_args(false);

  std::string dist_experiment, dist_checkpoint, dist_mode;
  std::vector<double> dist_direction;
  std::vector<std::string> dist_sets;
  std::vector<double> dist_z;
  CLI::App* distances = app.add_subcommand(
      "distances", "luminosity and angular-diameter distances and distance moduli along a ray "
                   "(CSV z,d_L_mpc,d_A_mpc,mu on standard output)");
  distances->add_option("experiment", dist_experiment, "experiment TOML file (its metric)")->required();
  distances->add_option("--checkpoint", dist_checkpoint, "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  distances->add_option("--z", dist_z, "redshifts, e.g. --z 0.1,0.5,1")->required()->delimiter(',');
  distances->add_option("--direction", dist_direction, "RA,DEC in degrees: a ray along this sky direction (physical mode)")
      ->delimiter(',');
  distances->add_option("--mode", dist_mode, "reference (one ray along +x, the default) or physical "
                                             "(comoving observer's frame, Jacobi-map D_A)")
      ->check(CLI::IsMember({"reference", "physical"}));
  distances->add_option("--set", dist_sets, "override one key, e.g. --set model.h0=67")
      ->allow_extra_args(false);

  std::string mock_experiment, mock_checkpoint, mock_out;
  std::vector<std::string> mock_sets;
  int64_t mock_n = 1000;
  uint64_t mock_seed = 1;
  double mock_sigma = 0.15, mock_zmin = 0.01, mock_zmax = 2.3;
  bool mock_no_noise = false;
  CLI::App* mock = app.add_subcommand(
      "mock-sn", "a mock supernova catalogue (Pantheon+ format) from the experiment's metric");
  mock->add_option("experiment", mock_experiment, "experiment TOML file (its metric)")->required();
  mock->add_option("--checkpoint", mock_checkpoint, "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  mock->add_option("--out", mock_out, "the catalogue to write (never overwritten)")->required();
  mock->add_option("--n", mock_n, "number of supernovae")->check(CLI::PositiveNumber);
  mock->add_option("--seed", mock_seed, "seed of redshifts, sky positions and noise");
  mock->add_option("--sigma", mock_sigma, "distance-modulus error (mag)")->check(Finite(false));
  mock->add_flag("--no-noise", mock_no_noise, "exact distance moduli (sigma still written)");
  mock->add_option("--z-min", mock_zmin, "smallest redshift")->check(Finite(true));
  mock->add_option("--z-max", mock_zmax, "largest redshift")->check(Finite(false));
  mock->add_option("--set", mock_sets, "override one key, e.g. --set model.h0=67")
      ->allow_extra_args(false);

  AblateOptions ablate_options;
  CLI::App* ablate = app.add_subcommand(
      "ablate", "run every combination of --vary values (and seeds) as separate processes; "
                "compare them in ablation.csv, ablation.md and ablation.png");
  ablate->add_option("experiment", ablate_options.experiment, "experiment TOML file");
  ablate->add_option("--vary", ablate_options.varies,
                     "KEY=V1,V2,... (repeatable; every combination runs), e.g. --vary "
                     "loss.wec.constraint.plugin=soft_quadratic,linear")
      ->allow_extra_args(false);
  ablate->add_option("--set", ablate_options.sets, "override one key in every variant")
      ->allow_extra_args(false);
  ablate->add_option("--seeds", ablate_options.seeds, "seeds per variant: the experiment's seed, +1, ...")
      ->check(CLI::PositiveNumber);
  ablate->add_option("--jobs", ablate_options.jobs,
                     "variants at a time (each gets cores/jobs threads unless runtime.threads is set)")
      ->check(CLI::PositiveNumber);
  ablate->add_option("--out", ablate_options.out, "folder for the runs and the table (new or empty)");
  ablate->add_option("--executor", ablate_options.executor,
                     "local (processes here, the default) or slurm (one job array, OUT/sweep.sbatch)")
      ->check(CLI::IsMember({"local", "slurm"}));
  ablate->add_option("--collect", ablate_options.collect,
                     "build the table of the sweep in DIR from whatever finished, marking the rest");
  auto& slurm = ablate_options.slurm;
  ablate->add_option("--partition", slurm.partition, "slurm: partition");
  ablate->add_option("--time", slurm.time, "slurm: time limit per task, e.g. 02:00:00");
  ablate->add_option("--cpus-per-task", slurm.cpus_per_task, "slurm: CPUs per task (runtime.threads follows)")
      ->check(CLI::Range(1, 1024));
  ablate->add_option("--mem", slurm.mem, "slurm: memory per task, e.g. 4G");
  ablate->add_option("--account", slurm.account, "slurm: account");
  ablate->add_option("--qos", slurm.qos, "slurm: quality of service");
  ablate->add_option("--sbatch-arg", slurm.sbatch_args, "slurm: any other sbatch option, e.g. --sbatch-arg=--exclusive")
      ->allow_extra_args(false);
  ablate->add_option("--warn-seconds", slurm.warn_seconds,
                     "slurm: seconds before the time limit at which a task checkpoints and requeues itself (default 120)")
      ->check(CLI::Range(10, 86400));
  ablate->add_option("--poll", slurm.poll_seconds, "slurm: seconds between queue polls while waiting (default 5)")
      ->check(CLI::Range(0.05, 3600.0));
  bool ablate_no_wait = false;
  ablate->add_flag("--no-wait", ablate_no_wait, "slurm: submit, print the job id and return");

  ReportOptions report_options;
  CLI::App* report = app.add_subcommand(
      "report", "tables and figures of a run in RUN_DIR/report/: training curves, Hubble rates and "
                "shear along the observer's world line, curvature and shear today, the Hubble "
                "diagram, curriculum weights (report.md shows them all)");
  AddRunOptions(report, &report_options.run_dir, &report_options.checkpoint);
  report->add_option("--grid", report_options.grid, "points per side of each plane (default 81)")
      ->check(CLI::Range(2, 1000));
  report->add_option("--worldline", report_options.worldline,
                     "points along the observer's world line, t in [-4, 1] (default 251)")
      ->check(CLI::Range(2, 100000));
  bool report_no_figures = false;
  report->add_flag("--no-figures", report_no_figures, "tables only (no Python)");
  report->add_flag("--notebook-kinematics", report_options.notebook_kinematics,
                   "also H_mean and shear along the world line as the part-1 notebook computed them "
                   "(its d_c g_a0 in place of d_t gamma_ij), beside the correct ones");

  CertifyCommandOptions certify_options;
  CLI::App* certify = app.add_subcommand(
      "certify", "the held-out certificate of a run's checkpoint: R and every constraint on a grid "
                 "through the domain's faces, edges and corners, then a search between its points "
                 "(RUN_DIR/certificate_<checkpoint>.json)");
  AddRunOptions(certify, &certify_options.run_dir, &certify_options.checkpoint);
  certify->add_option("--points", certify_options.points,
                      "grid size per constrained domain (default: the experiment's certify.points)")
      ->check(CLI::Range(int64_t{16}, int64_t{100000000}));

  SkyOptions sky_options;
  CLI::App* sky = app.add_subcommand(
      "sky", "the trained metric on the real sky against flat LCDM: Pantheon+ (zHD > 0.01, calibrators "
             "dropped), chi^2 along physical rays and the reference ray beside the LCDM best fit on the "
             "same selection (RUN_DIR/sky_<checkpoint>.json)");
  AddRunOptions(sky, &sky_options.run_dir, &sky_options.checkpoint);
  sky->add_option("--data", sky_options.data, "the catalogue (default Pantheon+SH0ES.dat)");
  sky->add_option("--covariance", sky_options.covariance,
                  "also with this full covariance (N, then N*N numbers over all rows of the catalogue)");
  sky->add_option("--bins", sky_options.bins,
                  "physical rays along this many directions (each supernova read off its nearest); 0: one "
                  "ray per supernova (default 48)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));

  CLI::App* plugins = app.add_subcommand(
      "plugins", "list every plugin: kind, library, parameters (type, default, range, doc)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitConfig;
  }
  try {
    if (*check) return CommandCheck(check_files, check_sets);
    if (*resume) return CommandResume(resume_dir, resume_steps);
    if (*ablate) {
      ablate_options.slurm.wait = !ablate_no_wait;
      return RunAblation(ablate_options);
    }
    if (*plugins) return CommandPlugins();
    if (*certify) return RunCertify(certify_options);
    if (*sky) return RunSky(sky_options);
    if (*report) {
      report_options.figures = !report_no_figures;
      return RunReport(report_options);
    }
    if (*probe) return CommandProbe(probe_experiment, probe_sets, probe_checkpoint, probe_points, probe_out);
    if (*mock) {
      return CommandMockSn(mock_experiment, mock_sets, mock_checkpoint, mock_out, mock_n, mock_seed,
                           mock_sigma, !mock_no_noise, mock_zmin, mock_zmax);
    }
    if (*distances) {
      return CommandDistances(dist_experiment, dist_sets, dist_checkpoint, dist_z, dist_direction, dist_mode);
    }
    return CommandRun(run_experiment, run_sets, run_out, run_steps);
  } catch (const std::bad_alloc&) {
    return OutOfMemory(app, "the C++ allocator failed");
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (IsOutOfMemory(what)) return OutOfMemory(app, what);
    std::cerr << "lumpy: internal error: " << what << std::endl;
    return kExitRuntime;
  } catch (const std::exception& e) {
    std::cerr << "lumpy: internal error: " << e.what() << std::endl;
    return kExitRuntime;
  }
}

}  // namespace lumpy
