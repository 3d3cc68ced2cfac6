// cmb_expansion (part 5): the early universe expands in every direction.
// Violation per point  v = sum_i max(0, -H_i)^2  over the directional Hubble
// rates H_x, H_y, H_z; a constraint, meant for its own early-time domain
// (e.g. t in [-4, -3.99]) with its own handler.

#include "lumpy/lumpy.h"

namespace {

class CmbExpansion : public lumpy::LossTerm {
 public:
  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    auto v = torch::relu(-ctx.geometry(1).hubble_rates()).square().sum(-1);
    return {v, v.mean()};
  }
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddLoss(
      "cmb_expansion", "early-universe expansion prior: violation sum_i max(0, -H_i)^2 per point",
      lumpy::LossKind::kConstraint, {},
      lumpy::FactoryOf<CmbExpansion>());
}

}  // namespace

LUMPY_PLUGIN(Register)
