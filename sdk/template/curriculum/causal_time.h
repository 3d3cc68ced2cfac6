#pragma once
// causal_time: the causal training of Wang, Sankaran & Perdikaris (2022,
// "Respecting causality is all you need for training physics-informed neural
// networks"), as a lumpy curriculum. The domain's time span is cut into S
// slices; slice i's mean loss L_i is weighted by
//   w_i = exp(-epsilon * sum_{k<i} L_k)     (held fixed in the gradient),
// and the domain's loss is sum_i w_i L_i / S: a slice is trained once the
// slices before it fit. After each step, when every weight exceeds delta
// (all of time is trained), epsilon grows by `factor`, up to epsilon_max.
//
// Copy this folder to start your own curriculum: rename the class, the
// plugin name and the files; take the domain's box from set_bounds(); keep
// what update() changes in registered buffers (the engine saves and restores
// them); change state only in update(), never in reduce().

#include <lumpy/lumpy.h>

namespace causal_time {

class CausalTime : public lumpy::CurriculumWeighter {
 public:
  explicit CausalTime(const lumpy::Params& params);

  void set_bounds(const lumpy::DomainBounds& bounds) override;
  torch::Tensor reduce(const torch::Tensor& points, const torch::Tensor& per_point_loss) override;
  void update(const torch::Tensor& points, const torch::Tensor& per_point_loss, int64_t step) override;
  // epsilon, and the smallest slice weight of the last step.
  std::vector<std::pair<std::string, double>> telemetry() const override;

  // Each slice's mean loss [S] (0 for a slice without points) and its causal
  // weight [S], detached.
  std::pair<torch::Tensor, torch::Tensor> SliceLosses(const torch::Tensor& points,
                                                      const torch::Tensor& per_point_loss) const;

 private:
  int64_t slices_;
  double factor_, epsilon_max_, delta_;
  double t0_ = 0.0, t1_ = 1.0;  // from set_bounds: given again to a resumed run, so not state
  torch::Tensor epsilon_;       // buffers: what update() changes
  torch::Tensor min_weight_;
};

// Declares the parameters and adds the plugin to a registry.
absl::Status Register(lumpy::Registry& registry);

}  // namespace causal_time
