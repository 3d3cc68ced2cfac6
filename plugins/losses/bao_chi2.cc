// bao_chi2: the BAO distances D_M/r_d and D_H/r_d (SDSS DR12 consensus by
// default, data/bao_dr12.csv) against light rays traced in the metric; chi^2
// with the 2x2 covariance at each redshift (docs/physics.md, "Light rays and observables").
//   D_M = (1+z) D_A, the comoving angular-diameter distance (flat space);
//   D_H = c / H_parallel = -(1+z)^2 E_obs / (d(1+z)/d lambda) along the ray.
// Reference mode reads both off the reference ray (D_A = d_L/(1+z)^2 with its
// coordinate-radius d_L); physical mode averages them over `bins` rays
// covering the sky (BAO surveys average over their footprint).
//   reduction = "total": the chi^2; "mean": chi^2 / (2 N)

#include "absl/strings/str_cat.h"
#include "lumpy/lumpy.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/supernovae.h"
#include "lumpy/sky_rays.h"
#include "lumpy/status_macros.h"

namespace {

class BaoChi2 : public lumpy::LossTerm {
 public:
  BaoChi2(const lumpy::Params& p, lumpy::BaoTable table)
      : table_(std::move(table)),
        total_(p.GetString("reduction") == "total"),
        rd_(p.GetDouble("r_d")),
        unreached_weight_(p.GetDouble("unreached_weight")),
        tracer_(lumpy::rays::TracerOptions(p)) {
    tracer_.hubble_distance = true;
    const int64_t n = table_.size();
    rays_.physical = p.GetString("mode") == "physical";
    if (rays_.physical) {
      rays_.directions = lumpy::DirectionBins(std::max<int64_t>(1, p.GetInt("bins")));
      const int64_t r = rays_.directions.size(0);
      // Every redshift on every ray: target i * R + ray.
      rays_.ray_of = torch::arange(r, torch::kLong).repeat({n});
      z_ = table_.z.repeat_interleave(r);
    } else {
      rays_.ray_of = torch::zeros({n}, torch::kLong);
      z_ = table_.z;
    }
  }

  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    const auto options = ctx.options();
    auto z = z_.to(options);
    auto traced = lumpy::rays::Trace(ctx.metric(), rays_, z, options,
                                     lumpy::rays::AtObserver(tracer_, ctx.observer_event()));
    telemetry_.Record(traced);
    const int64_t n = table_.size(), per = z.size(0) / n;
    auto reached = traced.reached.view({n, per});
    auto zc = table_.z.to(options);
    // Averages over each redshift's reached rays.
    auto w = reached.to(options.dtype());
    auto count = w.sum(1);
    auto dm = ((1.0 + zc) * (traced.angular_distance.view({n, per}) * w).sum(1) / count.clamp_min(1)) / rd_;
    auto dh = ((traced.hubble_distance.view({n, per}) * w).sum(1) / count.clamp_min(1)) / rd_;
    auto ok = count > 0;
    auto chi2 = table_.Chi2(torch::where(ok, dm, table_.dm.to(options)),
                            torch::where(ok, dh, table_.dh.to(options)));
    auto value = total_ ? chi2 : chi2 / static_cast<double>(2 * n);
    auto short_by = lumpy::rays::Shortfall(traced, z, rays_.ray_of);
    if (short_by.defined()) value = value + unreached_weight_ * short_by;
    return {torch::Tensor(), value};
  }

  std::vector<std::pair<std::string, double>> telemetry() const override {
    return telemetry_.values();
  }

 private:
  lumpy::BaoTable table_;
  bool total_;
  double rd_, unreached_weight_;
  lumpy::RayTracerOptions tracer_;
  lumpy::rays::Plan rays_;
  torch::Tensor z_;
  lumpy::rays::RayTelemetry telemetry_;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddLoss(
      "bao_chi2", "BAO D_M/r_d and D_H/r_d against light rays traced in the metric",
      lumpy::LossKind::kDataset,
      lumpy::Concat({lumpy::rays::RaySpecs(), {
          ParamSpec::String("data", "the BAO table: a path, or a name looked up in LUMPY_DATA_PATH, "
                                    "./data and the project's data folder")
              .Default(std::string("bao_dr12.csv")),
          ParamSpec::Double("r_d", "sound horizon at the drag epoch, Mpc").Default(147.09).Greater(0),
          ParamSpec::String("reduction", "total: chi^2; mean: chi^2 per measured number")
              .Default(std::string("total"))
              .OneOf({"mean", "total"}),
          ParamSpec::Double("unreached_weight", "penalty per unit of redshift the rays fall short")
              .Default(10.0)
              .AtLeast(0),
      }}),
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::LossTerm>> {
        auto path = lumpy::ResolveDataFile(p.GetString("data"));
        if (!path.ok()) return lumpy::ParamError("data", std::string(path.status().message()));
        LUMPY_ASSIGN_OR_RETURN(auto table, lumpy::LoadBao(*path));
        return std::make_shared<BaoChi2>(p, std::move(table));
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
