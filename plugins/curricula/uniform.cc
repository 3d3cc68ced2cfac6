// uniform: every point weighs the same; the domain's loss is the mean of its
// per-point losses.

#include "lumpy/lumpy.h"

namespace {

class UniformImpl : public lumpy::CurriculumWeighter {
 public:
  torch::Tensor reduce(const torch::Tensor&, const torch::Tensor& per_point) override {
    return per_point.mean();
  }
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddCurriculum(
      "uniform", "plain mean of the per-point losses", {},
      lumpy::FactoryOf<UniformImpl>());
}

}  // namespace

LUMPY_PLUGIN(Register)
