#pragma once
// MetricModel: the metric g_mn(t,x,y,z) as a torch module.

#include <torch/torch.h>

#include "lumpy/export.h"
#include "lumpy/jet.h"
#include "lumpy/physical_parameter.h"

namespace lumpy {

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
