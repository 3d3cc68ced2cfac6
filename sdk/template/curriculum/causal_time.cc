#include "causal_time.h"

#include <cmath>

namespace causal_time {

CausalTime::CausalTime(const lumpy::Params& params)
    : slices_(params.GetInt("slices")),
      factor_(params.GetDouble("factor")),
      epsilon_max_(params.GetDouble("epsilon_max")),
      delta_(params.GetDouble("delta")) {
  epsilon_ = register_buffer("epsilon", torch::tensor(params.GetDouble("epsilon"), torch::kFloat64));
  min_weight_ = register_buffer("min_weight", torch::tensor(1.0, torch::kFloat64));
}

void CausalTime::set_bounds(const lumpy::DomainBounds& bounds) {
  t0_ = bounds.lo[0];
  t1_ = bounds.hi[0];
}

std::pair<torch::Tensor, torch::Tensor> CausalTime::SliceLosses(const torch::Tensor& points,
                                                                const torch::Tensor& loss) const {
  const double span = std::isfinite(t1_ - t0_) && t1_ > t0_ ? t1_ - t0_ : 1.0;
  auto slice = ((points.select(1, 0).to(torch::kFloat64) - t0_) / span * static_cast<double>(slices_))
                   .floor()
                   .clamp(0, static_cast<double>(slices_ - 1))
                   .to(torch::kLong);
  auto sums = torch::zeros({slices_}, loss.options()).index_add(0, slice, loss);
  auto counts = torch::zeros({slices_}, loss.options()).index_add(0, slice, torch::ones_like(loss));
  auto means = sums / counts.clamp_min(1.0);
  // w_i = exp(-epsilon sum_{k<i} L_k): the exclusive cumulative sum, held fixed.
  auto before = means.detach().cumsum(0) - means.detach();
  auto weights = torch::exp(-epsilon_.to(loss.dtype()) * before);
  return {means, weights};
}

torch::Tensor CausalTime::reduce(const torch::Tensor& points, const torch::Tensor& per_point_loss) {
  auto [means, weights] = SliceLosses(points, per_point_loss);
  return (weights * means).sum() / static_cast<double>(slices_);
}

void CausalTime::update(const torch::Tensor& points, const torch::Tensor& per_point_loss, int64_t) {
  torch::NoGradGuard no_grad;
  const auto weights = SliceLosses(points, per_point_loss).second;
  min_weight_.fill_(weights.min().item<double>());
  const double epsilon = epsilon_.item<double>();
  // Grows towards epsilon_max, never below where it started.
  if (min_weight_.item<double>() > delta_) epsilon_.fill_(std::max(epsilon, std::min(epsilon * factor_, epsilon_max_)));
}

std::vector<std::pair<std::string, double>> CausalTime::telemetry() const {
  return {{"epsilon", epsilon_.item<double>()}, {"min_weight", min_weight_.item<double>()}};
}

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddCurriculum(
      "causal_time", "causal time slices: slice i weighted by exp(-epsilon * loss of the slices before it)",
      {
          ParamSpec::Int("slices", "time slices S over the domain's t span").Default(int64_t{8}).AtLeast(1),
          ParamSpec::Double("epsilon", "causality parameter at the start (0: no causality, never grows)").Default(1.0).AtLeast(0),
          ParamSpec::Double("factor", "epsilon grows by this once every weight exceeds delta").Default(10.0).AtLeast(1),
          ParamSpec::Double("epsilon_max", "largest epsilon").Default(100.0).AtLeast(0),
          ParamSpec::Double("delta", "every weight above this: all of time is trained").Default(0.99).AtLeast(0).AtMost(1),
      },
      lumpy::FactoryOf<CausalTime>());
}

}  // namespace causal_time

LUMPY_PLUGIN(causal_time::Register)
