#pragma once
// CurriculumWeighter: attached to a point domain; maps the domain's summed
// per-point loss to one scalar (uniform mean, learned spatial weights, ...).

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "lumpy/export.h"

namespace lumpy {

class LUMPY_API CurriculumWeighter : public torch::nn::Module {
 public:
  ~CurriculumWeighter() override;

  // points [B,4], per_point_loss [B] -> scalar.
  virtual torch::Tensor reduce(const torch::Tensor& points,
                               const torch::Tensor& per_point_loss) = 0;

  // Named scalars for metrics.csv (e.g. the mean weight).
  virtual std::vector<std::pair<std::string, double>> telemetry() const;
};

}  // namespace lumpy
