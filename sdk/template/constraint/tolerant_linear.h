#pragma once
// tolerant_linear: a linear penalty that ignores violations up to a tolerance,
//   per point  w * max(0, v - tol),   total  mean over the domain.
// Copy this folder to start your own constraint handler: rename the class,
// the plugin name and the files, change penalty() (and update() and
// telemetry() if your handler keeps state between steps: register what
// update() changes with register_buffer in the constructor, and the engine
// saves and restores it; see lumpy/constraint_handler.h).

#include <lumpy/lumpy.h>

namespace tolerant_linear {

class TolerantLinear : public lumpy::ConstraintHandler {
 public:
  // Reads only declared, already validated parameters.
  explicit TolerantLinear(const lumpy::Params& params);

  lumpy::Penalty penalty(const torch::Tensor& violation) override;
  void update(const torch::Tensor& violation, int64_t step) override;
  // "active": the fraction of points whose violation exceeded the tolerance
  // in the last step, for metrics.csv.
  std::vector<std::pair<std::string, double>> telemetry() const override;

 private:
  double weight_;
  double tolerance_;
  double active_ = 0.0;
};

// Declares the parameters and adds the plugin to a registry.
absl::Status Register(lumpy::Registry& registry);

}  // namespace tolerant_linear
