// linear: a fixed linear penalty w * v per point (w * mean(v) over the
// domain). An exact penalty: for w above the constraint's Lagrange
// multiplier the penalised optimum lies on the constraint.

#include "lumpy/lumpy.h"

namespace {

class Linear : public lumpy::ConstraintHandler {
 public:
  explicit Linear(const lumpy::Params& p) : weight_(p.GetDouble("weight")) {}

  lumpy::Penalty penalty(const torch::Tensor& v) override {
    auto per_point = weight_ * v;
    return {per_point, per_point.mean()};
  }

 private:
  double weight_;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddConstraint(
      "linear", "fixed linear penalty: weight * mean(v)",
      {lumpy::ParamSpec::Double("weight", "penalty weight w").Default(1.0).AtLeast(0)},
      lumpy::FactoryOf<Linear>());
}

}  // namespace

LUMPY_PLUGIN(Register)
