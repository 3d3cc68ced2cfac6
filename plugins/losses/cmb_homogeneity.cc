// cmb_homogeneity (part 5): the early universe is nearly homogeneous.
// Violation per point  v = max(0, sum_k sum_mn (d_k g_mn)^2 - tolerance)^2,
// k over the spatial coordinates x, y, z and (m, n) over all 16 components.

#include "lumpy/lumpy.h"

namespace {

class CmbHomogeneity : public lumpy::LossTerm {
 public:
  explicit CmbHomogeneity(const lumpy::Params& p) : tolerance_(p.GetDouble("tolerance")) {}
  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    // dg[b,m,n,k] = d_k g_mn; k = 1..3 are x, y, z.
    const auto& dg = ctx.geometry(1).jet().dg;
    auto gradient_sq = dg.narrow(3, 1, 3).square().sum({1, 2, 3});
    auto v = torch::relu(gradient_sq - tolerance_).square();
    return {v, v.mean()};
  }

 private:
  double tolerance_;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddLoss(
      "cmb_homogeneity",
      "early-universe homogeneity prior: violation max(0, sum_k,mn (d_k g_mn)^2 - tolerance)^2 per point",
      lumpy::LossKind::kConstraint,
      {lumpy::ParamSpec::Double("tolerance", "spatial metric gradient allowed without penalty")
           .Default(1e-5)
           .AtLeast(0)},
      lumpy::FactoryOf<CmbHomogeneity>());
}

}  // namespace

LUMPY_PLUGIN(Register)
