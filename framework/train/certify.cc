#include "train/certify.h"

#include <cmath>

#include "train/point_set_context.h"

namespace lumpy {

torch::Tensor HeldOutGrid(const DomainSpec& d, int64_t points, const torch::TensorOptions& options) {
  int64_t ns = std::max<int64_t>(1, static_cast<int64_t>(std::floor(std::pow(points, 0.25))));
  while ((ns + 1) * (ns + 1) * (ns + 1) * (ns + 1) <= points) ++ns;
  while (ns > 1 && ns * ns * ns * ns > points) --ns;
  const int64_t nt = std::max<int64_t>(1, std::llround(static_cast<double>(points) / (ns * ns * ns)));
  double t0 = INFINITY, t1 = -INFINITY;
  for (const auto& s : d.strata) {
    t0 = std::min(t0, s.t_min);
    t1 = std::max(t1, s.t_max);
  }
  auto centres = [&](double lo, double hi, int64_t n) {
    return lo + (hi - lo) * (torch::arange(n, options) + 0.5) / static_cast<double>(n);
  };
  auto grid = torch::meshgrid({centres(t0, t1, nt), centres(d.x[0], d.x[1], ns),
                               centres(d.y[0], d.y[1], ns), centres(d.z[0], d.z[1], ns)},
                              "ij");
  return torch::stack({grid[0].flatten(), grid[1].flatten(), grid[2].flatten(), grid[3].flatten()}, 1);
}

namespace {

std::vector<double> Row(const torch::Tensor& points, int64_t i) {
  auto p = points[i].to(torch::kFloat64).contiguous();
  return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + 4);
}

}  // namespace

nlohmann::json Certify(Components& c, int64_t points, const torch::TensorOptions& options,
                       int64_t chunk) {
  nlohmann::json out = nlohmann::json::object();
  if (points <= 0) return out;
  torch::NoGradGuard no_grad;
  for (const auto& d : c.domains) {
    std::vector<LossComponent*> constraints;
    for (auto& l : c.losses) {
      if (l.handler && l.spec->domain == d.spec->name) constraints.push_back(&l);
    }
    if (constraints.empty()) continue;
    const auto grid = HeldOutGrid(*d.spec, points, options);
    const int64_t n = grid.size(0);
    double r_min = INFINITY;
    int64_t r_at = -1;
    std::vector<double> v_max(constraints.size(), -INFINITY), v_sum(constraints.size(), 0.0);
    std::vector<int64_t> v_at(constraints.size(), -1);
    int64_t non_finite = 0;
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t m = std::min(chunk, n - start);
      PointSetContext ctx(*c.model, grid.narrow(0, start, m));
      auto r = ctx.geometry(2).ricci_scalar();
      non_finite += (~torch::isfinite(r)).sum().item<int64_t>();
      auto rmin = r.nan_to_num(INFINITY).min(0);
      if (std::get<0>(rmin).item<double>() < r_min) {
        r_min = std::get<0>(rmin).item<double>();
        r_at = start + std::get<1>(rmin).item<int64_t>();
      }
      for (size_t k = 0; k < constraints.size(); ++k) {
        auto v = constraints[k]->term->evaluate(ctx).per_point.detach();
        non_finite += (~torch::isfinite(v)).sum().item<int64_t>();
        v = v.nan_to_num(INFINITY, INFINITY, -INFINITY);
        auto vmax = v.max(0);
        if (std::get<0>(vmax).item<double>() > v_max[k]) {
          v_max[k] = std::get<0>(vmax).item<double>();
          v_at[k] = start + std::get<1>(vmax).item<int64_t>();
        }
        v_sum[k] += v.sum().item<double>();
      }
    }
    nlohmann::json dj;
    dj["points"] = n;
    dj["ricci_min"] = r_min;
    if (r_at >= 0) dj["ricci_min_at"] = Row(grid, r_at);
    dj["non_finite"] = non_finite;
    for (size_t k = 0; k < constraints.size(); ++k) {
      nlohmann::json cj;
      cj["max"] = v_max[k];
      cj["mean"] = v_sum[k] / static_cast<double>(n);
      if (v_at[k] >= 0) cj["max_at"] = Row(grid, v_at[k]);
      dj["constraints"][constraints[k]->spec->name] = cj;
    }
    out[d.spec->name] = dj;
  }
  return out;
}

}  // namespace lumpy
