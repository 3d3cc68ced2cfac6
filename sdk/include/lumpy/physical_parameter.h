#pragma once
// Physical scalars (Omega_m, H0, ...) that a plugin lets training fit.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lumpy/export.h"
#include "lumpy/params.h"

namespace lumpy {

// One fitted scalar as the engine sees it. The engine gives each its own Adam
// group (learning rate x lr_factor, never gradient-clipped), projects it back
// into [min, max] after every step, and reports it in metrics.csv and
// summary.json as <entry>.<name>.
struct LUMPY_API PhysicalParameter {
  std::string name;
  torch::Tensor value;  // 0-dim leaf tensor with requires_grad
  double min = 0, max = 0;
  double lr_factor = 1;
};

// The one way a plugin declares such a scalar: the value's own ParamSpec
// (name, doc, default, range) plus three generated keys,
//   <name>_trainable  (bool, default false)
//   <name>_bounds     ([min, max], the projection interval while fitting)
//   <name>_lr_factor  (its learning rate over the network's)
// and, once the table is validated, the float64 0-dim tensor to compute with.
class LUMPY_API PhysicalScalar {
 public:
  static std::vector<ParamSpec> Specs(ParamSpec value, std::vector<double> bounds,
                                      double lr_factor);
  // Cross-key checks for a plugin's factory: min < max, and a trainable
  // initial value inside the bounds. Messages name the key.
  static absl::Status Check(const Params& params, const std::string& name);

  PhysicalScalar() = default;
  PhysicalScalar(const Params& params, const std::string& name);

  // float64 0-dim; a leaf with requires_grad when trainable.
  const torch::Tensor& value() const { return value_; }
  double initial() const { return initial_; }
  bool trainable() const { return trainable_; }
  // The engine's record when trainable; empty when fixed.
  std::vector<PhysicalParameter> parameters() const;

 private:
  std::string name_;
  torch::Tensor value_;
  double initial_ = 0, min_ = 0, max_ = 0, lr_factor_ = 1;
  bool trainable_ = false;
};

}  // namespace lumpy
