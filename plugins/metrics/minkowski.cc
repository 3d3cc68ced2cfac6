// minkowski: flat spacetime, g = diag(-1, 1, 1, 1) everywhere.
#include "lumpy/lumpy.h"

namespace {

class Minkowski : public lumpy::AnalyticMetric {
 public:
  torch::Tensor metric(const torch::Tensor& x) override {
    auto eta = torch::tensor({-1.0, 1.0, 1.0, 1.0}, x.options());
    return torch::diag_embed(eta.expand({x.size(0), 4}));
  }
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddMetric(
      "minkowski", "flat spacetime: g = diag(-1, 1, 1, 1)", {},
      lumpy::FactoryOf<Minkowski>());
}

}  // namespace

LUMPY_PLUGIN(Register)
