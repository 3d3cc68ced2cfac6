// wec: the weak energy condition for dust, R = kappa rho >= 0.
// Violation per point v = max(0, -R); a constraint, so its handler decides
// how v is penalised.

#include "lumpy/lumpy.h"

namespace {

class WeakEnergyCondition : public lumpy::LossTerm {
 public:
  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    auto v = torch::relu(-ctx.geometry(2).ricci_scalar());
    return {v, v.mean()};
  }
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddLoss(
      "wec", "weak energy condition for dust: violation max(0, -R) per point",
      lumpy::LossKind::kConstraint, {},
      lumpy::FactoryOf<WeakEnergyCondition>());
}

}  // namespace

LUMPY_PLUGIN(Register)
