#pragma once
// MetricModel: the metric g_mn(t,x,y,z) as a torch module.

#include <torch/torch.h>

#include "lumpy/export.h"
#include "lumpy/jet.h"

namespace lumpy {

// A scalar of the physics (Omega_m, H0, ...) that a plugin lets training fit.
// The engine gives each its own Adam group (learning rate x lr_factor, never
// gradient-clipped), projects it back into [min, max] after every step, and
// reports it in metrics.csv and summary.json as <entry>.<name>.
struct LUMPY_API PhysicalParameter {
  std::string name;
  torch::Tensor value;  // 0-dim leaf tensor with requires_grad
  double min = 0, max = 0;
  double lr_factor = 1;
};

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
