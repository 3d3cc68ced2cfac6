// cmb_isotropy (part 5): the early universe is nearly shear-free.
// Violation per point  v = max(0, sigma^2 - tolerance)^2,  sigma^2 the shear
// scalar of the 3+1 split.

#include "lumpy/lumpy.h"

namespace {

class CmbIsotropy : public lumpy::LossTerm {
 public:
  explicit CmbIsotropy(const lumpy::Params& p) : tolerance_(p.GetDouble("tolerance")) {}
  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    auto v = torch::relu(ctx.geometry(1).shear_squared() - tolerance_).square();
    return {v, v.mean()};
  }

 private:
  double tolerance_;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddLoss(
      "cmb_isotropy", "early-universe isotropy prior: violation max(0, sigma^2 - tolerance)^2 per point",
      lumpy::LossKind::kConstraint,
      {lumpy::ParamSpec::Double("tolerance", "shear allowed without penalty").Default(1e-5).AtLeast(0)},
      lumpy::FactoryOf<CmbIsotropy>());
}

}  // namespace

LUMPY_PLUGIN(Register)
