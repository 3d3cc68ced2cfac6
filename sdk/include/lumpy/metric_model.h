#pragma once
// MetricModel: the metric g_mn(t,x,y,z) as a torch module.

#include <torch/torch.h>

#include <array>

#include "lumpy/export.h"
#include "lumpy/jet.h"
#include "lumpy/physical_parameter.h"

namespace lumpy {

// An event (t, x, y, z) in the metric's coordinates.
using Event = std::array<double, 4>;

// Where the observer sits unless the experiment's [observer] event says
// otherwise: today (t = 1) at the spatial origin.
inline constexpr Event kDefaultObserver = {1.0, 0.0, 0.0, 0.0};

// The event as a batch of one point [1,4] with `options`.
inline torch::Tensor EventPoint(const Event& e, const torch::TensorOptions& options) {
  return torch::tensor({e[0], e[1], e[2], e[3]}, torch::kFloat64).to(options).view({1, 4});
}

class LUMPY_API MetricModel : public torch::nn::Module {
 public:
  ~MetricModel() override;

  // The metric and its coordinate derivatives up to `order` (0, 1 or 2) at
  // points x [B,4] (t,x,y,z), in x's dtype and device. See jet.h for shapes.
  virtual Jet jet(const torch::Tensor& x, int order) = 0;

  // Where the metric is defined; a probe reports points outside it instead of
  // returning NaN. Returns [B] bool. Default: everywhere.
  virtual torch::Tensor in_domain(const torch::Tensor& x);

  // Trainable physical scalars of the metric (not its network weights).
  virtual std::vector<PhysicalParameter> physical_parameters();
};

// A metric written in closed form: implement metric(x) [B,4] -> [B,4,4];
// the jet is the SDK's exact nested-autograd jet of it (see jet.h).
class LUMPY_API AnalyticMetric : public MetricModel {
 public:
  ~AnalyticMetric() override;
  virtual torch::Tensor metric(const torch::Tensor& x) = 0;
  Jet jet(const torch::Tensor& x, int order) override;
};

}  // namespace lumpy
