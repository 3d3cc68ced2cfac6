#include "train/sampling.h"

#include <algorithm>
#include <vector>

namespace lumpy {

torch::Tensor SamplePoints(const DomainSpec& domain, const torch::TensorOptions& options,
                           const RayPositions& rays, const Event& observer) {
  std::vector<torch::Tensor> parts;
  for (const auto& s : domain.strata) {
    auto u = torch::rand({s.count, 4}, options);
    auto lo = torch::tensor({s.t_min, domain.x[0], domain.y[0], domain.z[0]}, options);
    auto hi = torch::tensor({s.t_max, domain.x[1], domain.y[1], domain.z[1]}, options);
    parts.push_back(lo + (hi - lo) * u);
  }
  // The ray points' random numbers are drawn whether or not they are used
  // (2 per point), so that the random sequence does not depend on how many
  // bad states and segments there are: over several ranks, each with its own
  // rays, it stays the same on every rank.
  const int64_t n = domain.ray_points;
  if (n == 0) return torch::cat(parts, 0);
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat64);
  auto which = torch::rand({n}, cpu), along = torch::rand({n, 1}, cpu);
  int64_t left = n;
  if (rays.bad.defined()) {
    parts.push_back(rays.bad.narrow(0, 0, std::min(left, rays.bad.size(0))).to(options));
    left -= parts.back().size(0);
  }
  if (left > 0 && rays.segments.defined() && rays.segments.size(0) > 0) {
    const int64_t k = rays.segments.size(0);
    auto index = (which.narrow(0, 0, left) * static_cast<double>(k)).floor().clamp(0, k - 1).to(torch::kInt64);
    auto pick = rays.segments.index_select(0, index);
    auto u = along.narrow(0, 0, left);
    parts.push_back((pick.narrow(1, 0, 4) + u * (pick.narrow(1, 4, 4) - pick.narrow(1, 0, 4))).to(options));
  } else if (left > 0) {
    parts.push_back(EventPoint(observer, options).expand({left, 4}).clone());
  }
  return torch::cat(parts, 0);
}

}  // namespace lumpy
