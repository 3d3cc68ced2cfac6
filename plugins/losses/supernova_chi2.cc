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

#include "absl/strings/str_cat.h"
#include "lumpy/lumpy.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/sky_rays.h"
#include "lumpy/supernovae.h"
#include "lumpy/status_macros.h"

namespace {

class SupernovaChi2 : public lumpy::LossTerm {
 public:
  SupernovaChi2(const lumpy::Params& p, lumpy::SupernovaCatalogue catalogue)
      : catalogue_(std::move(catalogue)),
        total_(p.GetString("reduction") == "total"),
        unreached_weight_(p.GetDouble("unreached_weight")),
        tracer_(lumpy::rays::TracerOptions(p)),
        reference_(tracer_.reference_read_out),
        rays_(lumpy::rays::SupernovaRays(p, catalogue_)) {}

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
      lumpy::Concat({lumpy::rays::RaySpecs(), lumpy::rays::ReadOutSpecs(), {
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
        LUMPY_ASSIGN_OR_RETURN(auto cat, lumpy::LoadSupernovae(*path, lumpy::rays::SupernovaSelection(p)));
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
