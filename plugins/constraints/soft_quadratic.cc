// soft_quadratic: a fixed quadratic penalty w * v^2 per point (mean over the
// domain: w * mean(v^2)). Part 2's WEC treatment.

#include "lumpy/lumpy.h"

namespace {

class SoftQuadratic : public lumpy::ConstraintHandler {
 public:
  explicit SoftQuadratic(const lumpy::Params& p) : weight_(p.GetDouble("weight")) {}

  lumpy::Penalty penalty(const torch::Tensor& v) override {
    auto per_point = weight_ * v.square();
    return {per_point, per_point.mean()};
  }

 private:
  double weight_;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddConstraint(
      "soft_quadratic", "fixed quadratic penalty: weight * mean(v^2)",
      {lumpy::ParamSpec::Double("weight", "penalty weight w").Default(1.0).AtLeast(0)},
      lumpy::FactoryOf<SoftQuadratic>());
}

}  // namespace

LUMPY_PLUGIN(Register)
