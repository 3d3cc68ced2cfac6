#include "train/sampling.h"

#include <algorithm>
#include <vector>

namespace lumpy {

torch::Tensor SamplePoints(const DomainSpec& domain, const torch::TensorOptions& options,
                           const RayPositions& rays) {
  std::vector<torch::Tensor> parts;
  for (const auto& s : domain.strata) {
    auto u = torch::rand({s.count, 4}, options);
    auto lo = torch::tensor({s.t_min, domain.x[0], domain.y[0], domain.z[0]}, options);
    auto hi = torch::tensor({s.t_max, domain.x[1], domain.y[1], domain.z[1]}, options);
    parts.push_back(lo + (hi - lo) * u);
  }
  int64_t left = domain.ray_points;
  if (left > 0 && rays.bad.defined()) {
    parts.push_back(rays.bad.narrow(0, 0, std::min(left, rays.bad.size(0))).to(options));
    left -= parts.back().size(0);
  }
  if (left > 0 && rays.segments.defined() && rays.segments.size(0) > 0) {
    const auto cpu = torch::TensorOptions().dtype(torch::kFloat64);
    auto pick = rays.segments.index_select(0, torch::randint(rays.segments.size(0), {left}, torch::kInt64));
    auto u = torch::rand({left, 1}, cpu);
    parts.push_back((pick.narrow(1, 0, 4) + u * (pick.narrow(1, 4, 4) - pick.narrow(1, 0, 4))).to(options));
  } else if (left > 0) {
    parts.push_back(torch::tensor({1.0, 0.0, 0.0, 0.0}, options).expand({left, 4}).clone());
  }
  return torch::cat(parts, 0);
}

}  // namespace lumpy
