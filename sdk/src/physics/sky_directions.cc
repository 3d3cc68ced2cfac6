#include <cmath>

#include "lumpy/ray_tracer.h"

namespace lumpy {

torch::Tensor SkyDirections(const torch::Tensor& ra_deg, const torch::Tensor& dec_deg) {
  auto a = ra_deg.to(torch::kFloat64) * (M_PI / 180.0), d = dec_deg.to(torch::kFloat64) * (M_PI / 180.0);
  return torch::stack({torch::cos(d) * torch::cos(a), torch::cos(d) * torch::sin(a), torch::sin(d)}, 1);
}

torch::Tensor DirectionBins(int64_t n) {
  TORCH_CHECK(n > 0, "DirectionBins: need at least one bin");
  auto i = torch::arange(n, torch::kFloat64) + 0.5;
  auto z = 1.0 - 2.0 * i / static_cast<double>(n);
  auto phi = i * (M_PI * (3.0 - std::sqrt(5.0)));
  auto r = torch::sqrt((1.0 - z * z).clamp_min(0));
  return torch::stack({r * torch::cos(phi), r * torch::sin(phi), z}, 1);
}

torch::Tensor NearestBin(const torch::Tensor& directions, const torch::Tensor& bins) {
  return torch::mm(directions.to(torch::kFloat64), bins.to(torch::kFloat64).t()).argmax(1);
}

}  // namespace lumpy
