#include "tolerant_linear.h"

namespace tolerant_linear {

TolerantLinear::TolerantLinear(const lumpy::Params& params)
    : weight_(params.GetDouble("weight")), tolerance_(params.GetDouble("tolerance")) {}

lumpy::Penalty TolerantLinear::penalty(const torch::Tensor& violation) {
  auto per_point = weight_ * torch::relu(violation - tolerance_);
  return {per_point, per_point.mean()};
}

void TolerantLinear::update(const torch::Tensor& violation, int64_t) {
  active_ = (violation > tolerance_).to(torch::kFloat64).mean().item<double>();
}

std::vector<std::pair<std::string, double>> TolerantLinear::telemetry() const {
  return {{"active", active_}};
}

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddConstraint(
      "tolerant_linear", "linear penalty beyond a tolerance: w * mean(max(0, v - tol))",
      {
          ParamSpec::Double("weight", "penalty weight w").Default(1.0).AtLeast(0),
          ParamSpec::Double("tolerance", "violations up to this are free").Default(0.0).AtLeast(0),
      },
      lumpy::FactoryOf<TolerantLinear>());
}

}  // namespace tolerant_linear

LUMPY_PLUGIN(tolerant_linear::Register)
