// supernova_chi2: the Pantheon+ distance moduli against light rays traced in
// the metric (docs/physics.md, "Light rays and observables"), mu = 5 log10(d_L / Mpc) + 25.
//   mode = "reference": one ray from the observer along +x, d_L = (1+z) x
//                       coordinate radius (the reference implementation)
//   mode = "physical":  rays along the supernovae's sky directions (one per
//                       direction bin, or one each), d_L = (1+z)^2 D_A from
//                       the Jacobi map
//   reduction = "mean":  mean over the supernovae of ((mu - mu_obs)/sigma)^2
//                        (the reference), or r^T C^-1 r / N with a covariance
//   reduction = "total": the chi^2 itself
// Supernovae beyond their ray's reach drop out of the chi^2 and add
// unreached_weight x (farthest missed target z - largest z reached) for each
// ray that falls short (a compass towards reaching them).
//   interpolation = "reference": the reference implementation's read-out and
//   chi^2 (geodesics.py@0bd4b52:192-262, loss.py@0bd4b52:113-117): every
//   supernova stays in the mean; one beyond the largest sampled z gets
//   10 (z - z_max) (in 1000 Mpc) added to its distance instead of dropping
//   out; mu = 5 log10(|d_L| + 1e-6) + 25.

#include <cmath>

#include "absl/strings/str_cat.h"
#include "lumpy/lumpy.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/sky_rays.h"
#include "lumpy/supernovae.h"
#include "lumpy/status_macros.h"

namespace {

// The read-out keys: how d_L is read off the reference ray.
std::vector<lumpy::ParamSpec> ReadOutSpecs() {
  using lumpy::ParamSpec;
  return {
      ParamSpec::String("interpolation",
                        "exact: each supernova at its crossing on the dense output; reference: the "
                        "reference implementation's read-out (reference mode only: d_L linear in z "
                        "between saved_points samples evenly spaced in the affine parameter, samples "
                        "past the ray's end at the largest z and d_L found, every supernova in the "
                        "chi^2, 10 (z - z_max) x 1000 Mpc added to the distance of one beyond z_max, "
                        "mu = 5 log10(|d_L| + 1e-6) + 25)")
          .Default(std::string("exact"))
          .OneOf({"exact", "reference"}),
      ParamSpec::Int("saved_points", "interpolation = reference: how many samples")
          .Default(int64_t{50})
          .AtLeast(2)
          .AtMost(100000),
  };
}

// The catalogue selection, from its parameters.
lumpy::SupernovaOptions SupernovaSelection(const lumpy::Params& p) {
  lumpy::SupernovaOptions o;
  o.z_column = p.GetString("z_column");
  o.mu_column = p.GetString("mu_column");
  o.sigma_column = p.GetString("sigma_column");
  o.z_min = p.GetDouble("z_min");
  o.z_max = p.GetDouble("z_max");
  o.drop_calibrators = p.GetBool("drop_calibrators");
  o.covariance = p.GetString("covariance");
  return o;
}

// The term's rays: physical mode, one per direction bin (each
// supernova read off its nearest bin) or one per supernova (bins = 0); else
// the reference ray. Needs the catalogue's RA/DEC in physical mode.
lumpy::rays::Plan SupernovaRays(const lumpy::Params& p, const lumpy::SupernovaCatalogue& catalogue) {
  lumpy::rays::Plan plan;
  plan.physical = p.GetString("mode") == "physical";
  if (!plan.physical) {
    plan.ray_of = torch::zeros({catalogue.size()}, torch::kLong);
    return plan;
  }
  auto sky = lumpy::SkyDirections(catalogue.ra, catalogue.dec);
  const int64_t bins = p.GetInt("bins");
  if (bins > 0) {
    plan.directions = lumpy::DirectionBins(bins);
    plan.ray_of = lumpy::NearestBin(sky, plan.directions);
  } else {
    plan.directions = sky;
    plan.ray_of = torch::arange(catalogue.size(), torch::kLong);
  }
  return plan;
}

class SupernovaChi2 : public lumpy::LossTerm {
 public:
  SupernovaChi2(const lumpy::Params& p, lumpy::SupernovaCatalogue catalogue)
      : catalogue_(std::move(catalogue)),
        total_(p.GetString("reduction") == "total"),
        unreached_weight_(p.GetDouble("unreached_weight")),
        tracer_(lumpy::rays::TracerOptions(p)),
        reference_(tracer_.reference_read_out),
        rays_(SupernovaRays(p, catalogue_)) {}

  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    const auto options = ctx.options();
    auto z = catalogue_.z.to(options);
    auto traced = lumpy::rays::Trace(ctx.metric(), rays_, z, options, tracer_);
    telemetry_.Record(traced);
    if (reference_) {  // every supernova, its shortfall inside its distance
      auto mu = 5.0 * torch::log10(traced.luminosity_distance.abs() + 1e-6) + 25.0;
      auto chi2 = catalogue_.Chi2(mu - catalogue_.mu.to(options));
      return {torch::Tensor(), total_ ? chi2 : chi2 / static_cast<double>(catalogue_.size())};
    }
    const auto& reached = traced.reached;
    auto d = torch::where(reached, traced.luminosity_distance,
                          torch::ones_like(traced.luminosity_distance));
    auto mu = 5.0 * torch::log10(d) + 25.0;
    auto residual = torch::where(reached, mu - catalogue_.mu.to(options), torch::zeros_like(mu));
    auto chi2 = catalogue_.Chi2(residual);
    auto value = total_ ? chi2 : chi2 / static_cast<double>(catalogue_.size());
    auto short_by = lumpy::rays::Shortfall(traced, z, rays_.ray_of);
    if (short_by.defined()) value = value + unreached_weight_ * short_by;
    return {torch::Tensor(), value};  // a dataset term: no per-point values
  }

  std::vector<std::pair<std::string, double>> telemetry() const override {
    return telemetry_.values();
  }

  // Every supernova of the selection with the model's distance modulus along
  // the term's own rays, and the model's curve at 200 redshifts log-spaced
  // over the selection (the reference ray; in physical mode along +-x, +-y,
  // +-z). The reference read-out gives every supernova a distance (one
  // beyond the ray's largest sampled z carries its shortfall): the loss's mu
  // for all.
  absl::StatusOr<lumpy::HubbleDiagram> hubble_diagram(lumpy::MetricModel& metric,
                                                      const torch::TensorOptions& options) override {
    torch::NoGradGuard no_grad;
    const auto& cat = catalogue_;
    auto traced = lumpy::rays::Trace(metric, rays_, cat.z.to(options), options, tracer_);
    auto dl = traced.luminosity_distance.to(torch::kCPU, torch::kFloat64);
    auto reached = traced.reached.to(torch::kCPU);
    auto modulus = [&](double d) {
      return reference_ ? 5.0 * std::log10(std::abs(d) + 1e-6) + 25.0 : 5.0 * std::log10(d) + 25.0;
    };
    lumpy::HubbleDiagram out;
    int64_t missed = 0;
    for (int64_t i = 0; i < cat.size(); ++i) {
      lumpy::HubbleDiagram::Object o;
      o.name = cat.names[i];
      o.z = cat.z[i].item<double>();
      if (cat.ra.defined()) o.ra = cat.ra[i].item<double>();
      if (cat.dec.defined()) o.dec = cat.dec[i].item<double>();
      o.mu_obs = cat.mu[i].item<double>();
      o.sigma = cat.sigma[i].item<double>();
      o.reached = reached[i].item<bool>();
      if (o.reached || reference_) o.mu_model = modulus(dl[i].item<double>());
      missed += !o.reached;
      out.objects.push_back(o);
    }
    const double z0 = cat.z.min().item<double>(), z1 = cat.z.max().item<double>();
    auto zc = torch::logspace(std::log10(z0), std::log10(z1), 200, 10.0, torch::kFloat64);
    auto add = [&](const std::string& label, const lumpy::SkyDistances& d) {
      auto c = d.luminosity_distance.to(torch::kCPU, torch::kFloat64);
      auto r = d.reached.to(torch::kCPU);
      for (int64_t i = 0; i < zc.size(0); ++i) {
        if (!r[i].item<bool>() && !reference_) continue;
        out.curve.push_back({label, zc[i].item<double>(), modulus(c[i].item<double>())});
      }
    };
    if (rays_.physical) {
      const struct { const char* label; double ra, dec; } dirs[] = {
          {"+x", 0, 0}, {"-x", 180, 0}, {"+y", 90, 0}, {"-y", 270, 0}, {"+z", 0, 90}, {"-z", 0, -90}};
      for (const auto& d : dirs) {
        auto dir = lumpy::SkyDirections(torch::tensor({d.ra}, torch::kFloat64), torch::tensor({d.dec}, torch::kFloat64));
        auto ray_of = torch::zeros({zc.size(0)}, torch::kLong);
        add(d.label, lumpy::TraceSky(metric, dir, ray_of, zc.to(options), options, tracer_));
      }
    } else {
      add("reference ray (+x)", lumpy::TraceReference(metric, zc.to(options), options, tracer_));
    }
    out.note = absl::StrCat(cat.size(), " supernovae (", rays_.physical ? "physical" : "reference", " mode",
                            missed ? absl::StrCat(", ", missed, " beyond the rays' reach") : "", ")");
    return out;
  }

 private:
  lumpy::SupernovaCatalogue catalogue_;
  bool total_;
  double unreached_weight_;
  lumpy::RayTracerOptions tracer_;
  bool reference_;
  lumpy::rays::Plan rays_;
  lumpy::rays::RayTelemetry telemetry_;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddLoss(
      "supernova_chi2",
      "Pantheon+ distance moduli against light rays traced in the metric (reference or physical mode)",
      lumpy::LossKind::kDataset,
      lumpy::Concat({lumpy::rays::RaySpecs(), ReadOutSpecs(), {
          ParamSpec::String("data", "the catalogue: a path, or a name looked up in "
                                    "LUMPY_DATA_PATH and ./data")
              .Default(std::string("Pantheon+SH0ES.dat")),
          ParamSpec::String("z_column", "redshift column")
              .Default(std::string("zCMB"))
              .OneOf({"zCMB", "zHD", "zHEL"}),
          ParamSpec::String("mu_column", "distance modulus column").Default(std::string("MU_SH0ES")),
          ParamSpec::String("sigma_column", "distance modulus error column")
              .Default(std::string("MU_SH0ES_ERR_DIAG")),
          ParamSpec::Double("z_min", "keep z_min < z").Default(0.0).AtLeast(0),
          ParamSpec::Double("z_max", "keep z <= z_max").Default(10.0).Greater(0),
          ParamSpec::Bool("drop_calibrators", "drop rows with IS_CALIBRATOR = 1").Default(false),
          ParamSpec::String("covariance", "optional full covariance file (N, then N*N numbers, "
                                          "every row of the catalogue); empty: diagonal errors")
              .Default(std::string("")),
          ParamSpec::String("reduction", "mean: chi^2 / N (the reference); total: chi^2")
              .Default(std::string("mean"))
              .OneOf({"mean", "total"}),
          ParamSpec::Double("unreached_weight", "penalty per unit of redshift the ray falls short "
                                                "(interpolation = exact; the reference read-out adds "
                                                "its own to the distance)")
              .Default(10.0)
              .AtLeast(0),
      }}),
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::LossTerm>> {
        auto path = lumpy::ResolveDataFile(p.GetString("data"));
        if (!path.ok()) return absl::InvalidArgumentError(absl::StrCat("data: ", path.status().message()));
        LUMPY_ASSIGN_OR_RETURN(auto cat, lumpy::LoadSupernovae(*path, SupernovaSelection(p)));
        if (p.GetString("interpolation") == "reference" && p.GetString("mode") != "reference") {
          return absl::InvalidArgumentError(
              "interpolation: \"reference\" is the reference implementation's read-out of its one "
              "ray along +x (d_L = (1+z) x coordinate radius); it needs mode = \"reference\"");
        }
        if (p.GetString("mode") == "physical" && !cat.ra.defined()) {
          return absl::InvalidArgumentError(absl::StrCat(
              cat.file, ": mode = \"physical\" traces rays along the supernovae's sky "
              "directions, but the file has no RA and DEC columns"));
        }
        return std::make_shared<SupernovaChi2>(p, std::move(cat));
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
