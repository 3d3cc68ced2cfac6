#include "lumpy/ray_tracer.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "physics/ray_integrator.h"
#include "physics/ray_observables.h"
#include "physics/ray_read_out.h"

namespace lumpy {
namespace {

using ray::Paths;
using ray::Redshift;

// Per ray: stop once z > max(z_stop, its largest target + margin).
std::vector<double> StopRedshifts(int64_t n_rays, const torch::Tensor& ray_of, const torch::Tensor& z,
                                  double z_stop, double margin) {
  std::vector<double> stop(n_rays, z_stop);
  auto zt = z.to(torch::kCPU, torch::kFloat64).contiguous();
  auto rt = ray_of.to(torch::kCPU, torch::kLong).contiguous();
  for (int64_t i = 0; i < zt.numel(); ++i) {
    const int64_t r = rt.data_ptr<int64_t>()[i];
    if (r >= 0 && r < n_rays) stop[r] = std::max(stop[r], zt.data_ptr<double>()[i] + margin);
  }
  return stop;
}

}  // namespace

int64_t RayStop::Count(const std::string& reason) const {
  return std::count(reasons.begin(), reasons.end(), reason);
}

std::string RayStop::Summary() const {
  std::map<std::string, int64_t> counts;
  for (const auto& r : reasons) ++counts[r];
  std::string s;
  for (const auto& [k, v] : counts) absl::StrAppend(&s, s.empty() ? "" : ", ", k, ": ", v);
  return s;
}

SkyDistances TraceReference(MetricModel& metric, const torch::Tensor& z_target,
                            const torch::TensorOptions& options, const RayTracerOptions& o,
                            std::optional<ReferenceReadOut> as_posted) {
  TORCH_CHECK(z_target.dim() == 1 && z_target.size(0) > 0, "TraceReference: z must be [N], N > 0");
  auto x0 = EventPoint(o.observer, options);
  auto g_obs = metric.jet(x0, 0).g;
  auto g00 = g_obs.select(1, 0).select(1, 0);
  auto kx = torch::sqrt(g00.abs() / g_obs.select(1, 1).select(1, 1).abs());
  auto one = torch::ones({1}, options), zero = torch::zeros({1}, options);
  auto y = torch::cat({x0, torch::stack({one, kx, zero, zero}, 1)}, 1);  // [1,8]
  Redshift redshift;
  redshift.e_obs = torch::sqrt(g00.abs()).squeeze();  // k^0 = 1 at the observer
  redshift.origin = x0.squeeze(0).narrow(0, 1, 3);
  auto ray_of = torch::zeros({z_target.size(0)}, torch::kLong);
  Paths paths = ray::Integrate(metric, y, redshift, StopRedshifts(1, ray_of, z_target, o.z_stop, o.z_margin), o);
  auto out = as_posted ? ray::ReadOffReference(metric, paths, redshift, z_target, options, o,
                                               as_posted->saved_points)
                       : ray::ReadOff(metric, paths, redshift, ray_of, z_target, options, o);
  out.z_max = out.z_max.squeeze(0);
  return out;
}

SkyDistances TraceSky(MetricModel& metric, const torch::Tensor& directions,
                      const torch::Tensor& ray_of, const torch::Tensor& z_target,
                      const torch::TensorOptions& options, const RayTracerOptions& o) {
  TORCH_CHECK(directions.dim() == 2 && directions.size(1) == 3 && directions.size(0) > 0,
              "TraceSky: directions must be [R,3], R > 0");
  TORCH_CHECK(z_target.dim() == 1 && ray_of.dim() == 1 && z_target.size(0) == ray_of.size(0),
              "TraceSky: z and ray_of must both be [N]");
  const int64_t n_rays = directions.size(0);
  auto x0 = EventPoint(o.observer, options);
  auto g = metric.jet(x0, 0).g.squeeze(0);  // [4,4]
  // The comoving observer and its orthonormal frame (Gram-Schmidt of d_x,
  // d_y, d_z projected orthogonal to u), all differentiable in the metric.
  auto eye = torch::eye(4, options);
  auto u = eye[0] / torch::sqrt(-g[0][0]);
  auto dot = [&](const torch::Tensor& a, const torch::Tensor& b) { return torch::dot(a, torch::mv(g, b)); };
  std::vector<torch::Tensor> e;
  for (int i = 1; i <= 3; ++i) {
    auto v = eye[i];
    v = v + dot(u, v) * u;
    for (const auto& ej : e) v = v - dot(ej, v) * ej;
    e.push_back(v / torch::sqrt(dot(v, v)));
  }
  auto triad = torch::stack(e, 0);  // [3,4]: e_i^mu
  auto n = directions.to(options);
  n = n / n.norm(2, 1, true);
  // Screen: two unit vectors orthogonal to n in the frame, then to coordinates.
  auto helper = torch::where((n.select(1, 2).abs() < 0.9).view({-1, 1}),
                             torch::tensor({0.0, 0.0, 1.0}, options).expand({n_rays, 3}),
                             torch::tensor({1.0, 0.0, 0.0}, options).expand({n_rays, 3}));
  auto s1 = torch::linalg_cross(helper, n);
  s1 = s1 / s1.norm(2, 1, true);
  auto s2 = torch::linalg_cross(n, s1);
  auto k0 = u.unsqueeze(0) - torch::mm(n, triad);  // [R,4]
  auto y = torch::cat({x0.expand({n_rays, 4}), k0, torch::zeros({n_rays, 4}, options),
                       torch::mm(s1, triad), torch::zeros({n_rays, 4}, options), torch::mm(s2, triad)},
                      1);  // [R,24]
  Redshift redshift;
  redshift.physical = true;
  Paths paths = ray::Integrate(metric, y, redshift, StopRedshifts(n_rays, ray_of, z_target, o.z_stop, o.z_margin), o);
  return ray::ReadOff(metric, paths, redshift, ray_of, z_target, options, o);
}

}  // namespace lumpy
