// efe_residual: Einstein's field equations with pressureless dust (or vacuum)
// at the domain's points (docs/physics.md, "Matter and the field equations").
//
//   mixed:     r^m_n = (G^m_n + Lambda delta^m_n - T^m_n) * det(gamma)   (parts 3 on)
//   covariant: r_mn  =  G_mn  + Lambda g_mn       - T_mn                 (parts 1-2)
// Lambda (cosmological_constant) is 0 unless set: the reference's part-1 code
// still had Lambda = 0.7 in its residual, and setting it reproduces that run.
// Dust comoving with the coordinates: kappa rho = kappa rho0 V0 / sqrt(det gamma),
// kappa rho0 = 3 Omega_m H_mean(observer)^2, T_00 = kappa rho (-g00), with V0
// where rho = rho0 (rho0_at): 1 (unit_volume, the reference's: exact where
// sqrt(det gamma) = 1 at the observer, as a = 1 at t = 1 in FLRW) or
// sqrt(det gamma) at the observer's event (observer: exact wherever the
// experiment puts its observer).
// Per point: the mean over the 16 components of r^2.
// Omega_m is fixed, or (omega_m_trainable) a physical parameter fitted with
// the network in its own optimizer group and kept within omega_m_bounds.

#include "absl/strings/str_cat.h"
#include "lumpy/lumpy.h"
#include "lumpy/status_macros.h"

namespace {

class EfeResidual : public lumpy::LossTerm, public lumpy::ProbeColumnSource {
 public:
  explicit EfeResidual(const lumpy::Params& p)
      : mixed_(p.GetString("form") == "mixed"),
        dust_(p.GetString("matter") == "dust"),
        omega_m_(p, "omega_m"),
        lambda_(p.GetDouble("cosmological_constant")),
        det_floor_(p.GetDouble("det_floor")),
        rho0_at_observer_(p.GetString("rho0_at") == "observer") {}

  std::vector<lumpy::PhysicalParameter> physical_parameters() override {
    return omega_m_.parameters();
  }

  // `lumpy probe` and `lumpy report` draw the residual at any points.
  std::string probe_column() const override { return "efe_residual"; }

  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    lumpy::Geometry& geo = ctx.geometry(2);
    const auto& g = geo.metric();
    auto det = torch::clamp_min(geo.det_spatial_metric(), det_floor_);
    torch::Tensor residual = mixed_ ? geo.einstein_mixed() : geo.einstein();
    if (lambda_ != 0.0) {
      residual = residual + lambda_ * (mixed_ ? torch::eye(4, g.options()).unsqueeze(0) : g);
    }
    if (dust_) {
      auto h_today = ctx.observer(1).hubble_mean();  // [1], gradients flow through it
      auto omega_m = omega_m_.value().to(g.device(), g.scalar_type());
      auto kappa_rho = 3.0 * omega_m * h_today.square() / torch::sqrt(det);
      if (rho0_at_observer_) {
        kappa_rho = kappa_rho * torch::sqrt(torch::clamp_min(ctx.observer(1).det_spatial_metric(), det_floor_));
      }
      auto t00 = kappa_rho * (-g.select(1, 0).select(1, 0));  // [B]
      // Only T_00 is non-zero; mixed: T^m_n = g^m0 T_00 delta^0_n (column n = 0).
      auto e0 = torch::zeros({4}, g.options());
      e0[0] = 1.0;
      torch::Tensor t = mixed_ ? geo.inverse_metric().select(2, 0).unsqueeze(2) *
                                     t00.view({-1, 1, 1}) * e0.view({1, 1, 4})
                               : t00.view({-1, 1, 1}) * e0.view({1, 4, 1}) * e0.view({1, 1, 4});
      residual = residual - t;
    }
    if (mixed_) residual = residual * det.view({-1, 1, 1});
    auto per_point = residual.square().mean({1, 2});
    return {per_point, per_point.mean()};
  }

 private:
  bool mixed_, dust_;
  lumpy::PhysicalScalar omega_m_;
  double lambda_;
  double det_floor_;
  bool rho0_at_observer_;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddLoss(
      "efe_residual",
      "Einstein field equations with comoving dust or vacuum: mean squared residual per point",
      lumpy::LossKind::kObjective,
      lumpy::Concat({
          {
              ParamSpec::String("form",
                                "mixed: (G^m_n - T^m_n) det(gamma); covariant: G_mn - T_mn")
                  .Default(std::string("mixed"))
                  .OneOf({"mixed", "covariant"}),
              ParamSpec::String("matter", "dust comoving with the coordinates, or vacuum (T = 0)")
                  .Default(std::string("dust"))
                  .OneOf({"dust", "vacuum"}),
          },
          lumpy::PhysicalScalar::Specs(
              ParamSpec::Double("omega_m", "matter density parameter (initial value if trainable)")
                  .Default(0.3)
                  .AtLeast(0),
              {0.05, 0.3}, 100.0),
          {
              ParamSpec::Double("cosmological_constant",
                                "Lambda in G + Lambda g = T, in (1000 Mpc)^-2; 0 = none (the "
                                "reference's part-1 code had 0.7)")
                  .Default(0.0),
              ParamSpec::Double("det_floor", "floor of det(gamma) in the residual and the density")
                  .Default(1e-24)
                  .Greater(0),
              ParamSpec::String("rho0_at",
                                "where the dust density is rho0 = 3 Omega_m H_obs^2 / kappa: unit_volume "
                                "(sqrt(det gamma) = 1, the reference's; exact for an observer where a = 1) "
                                "or observer (at the [observer] event; exact for any observer)")
                  .Default(std::string("unit_volume"))
                  .OneOf({"unit_volume", "observer"}),
          },
      }),
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::LossTerm>> {
        LUMPY_RETURN_IF_ERROR(lumpy::PhysicalScalar::Check(p, "omega_m"));
        return std::make_shared<EfeResidual>(p);
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
