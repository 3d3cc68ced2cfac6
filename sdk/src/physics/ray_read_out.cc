#include "physics/ray_read_out.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <vector>

#include "physics/dopri5.h"
#include "physics/redshift_crossings.h"

namespace lumpy {

torch::Tensor InterpLikeJax(const torch::Tensor& x, const torch::Tensor& xp, const torch::Tensor& fp) {
  const int64_t n = xp.size(0);
  TORCH_CHECK(n >= 2 && fp.size(0) == n, "InterpLikeJax: need at least two samples");
  // The interval: jnp.searchsorted(xp, x, side='right') as JAX computes it
  // (a fixed-length binary search, ceil(log2(n+1)) halvings of [0, n): the
  // same answer on sorted samples and JAX's answer on unsorted ones), then
  // clipped to [1, n-1].
  std::vector<double> xs(n);
  {
    auto c = xp.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    std::copy(c.data_ptr<double>(), c.data_ptr<double>() + n, xs.begin());
  }
  auto xc = x.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const int levels = static_cast<int>(std::ceil(std::log2(static_cast<double>(n) + 1)));
  std::vector<int64_t> upper(x.size(0));
  for (int64_t j = 0; j < x.size(0); ++j) {
    const double q = xc.data_ptr<double>()[j];
    int64_t low = 0, high = n;
    for (int level = 0; level < levels; ++level) {
      const int64_t mid = (low + high) / 2;
      if (q < xs[mid]) {
        high = mid;
      } else {
        low = mid;
      }
    }
    upper[j] = std::clamp<int64_t>(high, 1, n - 1);
  }
  auto hi = torch::tensor(upper, torch::kLong).to(x.device()), lo = hi - 1;
  auto x0 = xp.index_select(0, lo), x1 = xp.index_select(0, hi);
  auto f0 = fp.index_select(0, lo), f1 = fp.index_select(0, hi);
  auto dx = x1 - x0;
  // jnp.interp's guard against a zero-width interval: np.spacing(eps).
  const double tiny = xp.scalar_type() == torch::kFloat64 ? std::nextafter(DBL_EPSILON, 1.0) - DBL_EPSILON
                                                          : std::nextafter(FLT_EPSILON, 1.0f) - FLT_EPSILON;
  auto flat = dx.abs() <= tiny;
  auto f = torch::where(flat, f0, f0 + (x - x0) / torch::where(flat, torch::ones_like(dx), dx) * (f1 - f0));
  f = torch::where(x < xp[0], fp[0].expand_as(f), f);
  return torch::where(x > xp[n - 1], fp[n - 1].expand_as(f), f);
}

torch::Tensor ReferenceDistances(const torch::Tensor& z, const torch::Tensor& d, int64_t samples,
                                 const torch::Tensor& target) {
  const int64_t valid = z.size(0);
  TORCH_CHECK(valid >= 1 && valid <= samples && d.size(0) == valid,
              "ReferenceDistances: need 1..samples valid samples");
  auto z_max = z.max(), d_max = d.max();
  auto zs = torch::cat({z, z_max.expand({samples - valid})});
  auto ds = torch::cat({d, d_max.expand({samples - valid})});
  auto read = samples >= 2 ? InterpLikeJax(target, zs, ds) : ds[0].expand_as(target);
  auto short_by = torch::where(z_max < target, 10.0 * (target - z_max), torch::zeros_like(read));
  return read + short_by;
}

namespace ray {
namespace {

// z at each ray's state index[r] (with graph), the states gathered per
// saved index: [R].
torch::Tensor RedshiftAtStates(MetricModel& metric, const Paths& p, const std::vector<int64_t>& index,
                               const Redshift& redshift) {
  const int64_t n_rays = static_cast<int64_t>(index.size());
  std::map<int64_t, std::vector<int64_t>> by_state;
  for (int64_t r = 0; r < n_rays; ++r) by_state[index[r]].push_back(r);
  std::vector<torch::Tensor> parts;
  std::vector<int64_t> order;
  for (const auto& [i, rs] : by_state) {
    parts.push_back(p.y[i].index_select(0, torch::tensor(rs, torch::kLong).to(p.y[i].device())));
    order.insert(order.end(), rs.begin(), rs.end());
  }
  std::vector<int64_t> where(n_rays);
  for (int64_t j = 0; j < n_rays; ++j) where[order[j]] = j;
  auto s = torch::cat(parts, 0).index_select(0, torch::tensor(where, torch::kLong).to(p.y[0].device()));
  return RedshiftAt(metric, s, redshift);
}

// The exact read-out: each target at its first crossing on the dense output
// (Crossings, then one differentiable Newton step).
// Which saved step each target's redshift is first crossed in (the running
// maximum of its ray's z up to the ray's last valid state), for the targets
// whose ray reached them; and the state of largest z on each ray.
struct Brackets {
  std::vector<int64_t> argmax;      // per ray: the saved index of its largest z
  std::vector<int64_t> reached_idx;  // the targets reached
  std::vector<int64_t> lo_flat, hi_flat, lo_step;  // per reached target: its step's ends
  std::vector<char> reached;         // per target
  // The read-out interpolates between the first n_saved states only, so that
  // later states (and the steps that led there) are not in its graph and the
  // backward pass skips them where only z_max (read off its own state) or
  // nothing uses them.
  int64_t n_saved = 1;
};

Brackets FindBrackets(const Paths& p, const int64_t* rp, const double* zp, int64_t n) {
  const int64_t n_rays = p.y.front().size(0);
  std::vector<std::vector<double>> run(n_rays);
  Brackets b;
  b.argmax.assign(n_rays, 0);
  for (int64_t r = 0; r < n_rays; ++r) {
    for (int64_t i = 0; i <= p.last[r]; ++i) {
      const double zi = p.z[i][r];
      run[r].push_back(i == 0 ? zi : std::max(run[r].back(), zi));
      if (zi >= p.z[b.argmax[r]][r]) b.argmax[r] = i;
    }
  }
  b.reached.assign(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rp[i];
    TORCH_CHECK(r >= 0 && r < n_rays, "ray index ", r, " out of range [0, ", n_rays, ")");
    const auto& zr = run[r];
    if (!(zp[i] > 0) || zr.size() < 2 || zp[i] > zr.back()) continue;
    b.reached[i] = 1;
    b.reached_idx.push_back(i);
    int64_t up = std::lower_bound(zr.begin(), zr.end(), zp[i]) - zr.begin();
    up = std::clamp<int64_t>(up, 1, static_cast<int64_t>(zr.size()) - 1);
    b.lo_step.push_back(up - 1);
    b.lo_flat.push_back((up - 1) * n_rays + r);
    b.hi_flat.push_back(up * n_rays + r);
    b.n_saved = std::max(b.n_saved, up + 1);
  }
  return b;
}

// The model of z along each bracketing step: z and dz/dtheta = h d(1+z)/dl
// at its ends, from the metric the integrator already evaluated there; and
// the model's crossings of the targets.
struct StepModels {
  StepModel model;
  std::vector<double> crossings;
};

StepModels ModelSteps(const Paths& p, const Redshift& redshift, const Brackets& b, const torch::Tensor& flat_y,
                      const torch::Tensor& flat_f, const std::vector<double>& steps, const int64_t* rp,
                      const double* zp, const torch::TensorOptions& options) {
  std::vector<double> rate;
  {
    torch::NoGradGuard no_grad;
    auto flat_g = torch::stack(at::TensorList(p.g).slice(0, b.n_saved), 0).flatten(0, 1);
    auto flat_dg = torch::stack(at::TensorList(p.dg).slice(0, b.n_saved), 0).flatten(0, 1);
    auto r = redshift.Rate(flat_g, flat_dg, flat_y.narrow(1, 4, 4).detach(), flat_f.narrow(1, 4, 4).detach());
    r = r.to(torch::kCPU, torch::kFloat64).contiguous();
    rate.assign(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
  }
  const int64_t m = static_cast<int64_t>(b.reached_idx.size());
  std::vector<double> za(m), zb(m), da(m), db(m), target(m);
  for (int64_t j = 0; j < m; ++j) {
    const int64_t r = rp[b.reached_idx[j]];
    za[j] = p.z[b.lo_step[j]][r];
    zb[j] = p.z[b.lo_step[j] + 1][r];
    da[j] = steps[j] * rate[b.lo_flat[j]];
    db[j] = steps[j] * rate[b.hi_flat[j]];
    target[j] = zp[b.reached_idx[j]];
  }
  auto as_tensor = [&](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64).to(options); };
  return {StepModel{as_tensor(za), as_tensor(da), as_tensor(zb), as_tensor(db)},
          ModelCrossings(za, da, zb, db, target)};
}

// d_L at the crossing states: at the root 1 + z = 1 + z* to first order, so
// the target itself is used. In reference mode d_L = (1+z) r (Observe's
// (1+z) cancels: no metric needed).
torch::Tensor LuminosityDistanceAt(MetricModel& metric, const torch::Tensor& state, const torch::Tensor& tgt,
                                   const Redshift& redshift) {
  if (redshift.physical) {
    return (1.0 + tgt).square() * Observe(state, metric.jet(state.narrow(1, 0, 4), 0).g, redshift).angular;
  }
  return (1.0 + tgt) * redshift.CoordinateDistance(state) * 1000.0;
}

}  // namespace

// The exact read-out: each target at its first crossing on the dense output,
// found on the step model and refined on the dense output (Crossings), then
// one differentiable Newton step for the crossing's exact first-order
// gradient.
SkyDistances ReadOff(MetricModel& metric, const Paths& p, const Redshift& redshift,
                     const torch::Tensor& ray_of, const torch::Tensor& z_target,
                     const torch::TensorOptions& options, const RayTracerOptions& o) {
  SkyDistances out;
  out.stop = p.stop;
  const int64_t n_rays = p.y.front().size(0), dim = p.y.front().size(1);
  const int64_t n = z_target.size(0);
  auto zt = z_target.to(torch::kCPU, torch::kFloat64).contiguous();
  auto rays = ray_of.to(torch::kCPU, torch::kLong).contiguous();
  const double* zp = zt.data_ptr<double>();
  const int64_t* rp = rays.data_ptr<int64_t>();
  Brackets b = FindBrackets(p, rp, zp, n);
  auto stack = [&](const std::vector<torch::Tensor>& v) {
    return torch::stack(at::TensorList(v).slice(0, b.n_saved), 0).reshape({b.n_saved * n_rays, dim});
  };
  auto flat_y = stack(p.y), flat_f = stack(p.f), flat_c = stack(p.c);
  out.z_max = RedshiftAtStates(metric, p, b.argmax, redshift);
  out.reached = torch::from_blob(b.reached.data(), {n}, torch::kBool).clone();
  out.luminosity_distance = torch::zeros({n}, options);
  out.angular_distance = torch::zeros({n}, options);
  out.source = torch::zeros({n, 8}, options);
  if (o.hubble_distance) out.hubble_distance = torch::zeros({n}, options);
  if (b.reached_idx.empty()) return out;

  const int64_t m = static_cast<int64_t>(b.reached_idx.size());
  auto idx = torch::tensor(b.reached_idx, torch::kLong);
  auto lo = torch::tensor(b.lo_flat, torch::kLong), hi = torch::tensor(b.hi_flat, torch::kLong);
  std::vector<double> steps(m);
  for (int64_t j = 0; j < m; ++j) steps[j] = p.lambda[b.lo_step[j] + 1] - p.lambda[b.lo_step[j]];
  auto step = torch::tensor(steps, torch::kFloat64).to(options).view({-1, 1});
  auto tgt = zt.index_select(0, idx).to(options);
  auto y0 = flat_y.index_select(0, lo), f0 = flat_f.index_select(0, lo);
  auto y1 = flat_y.index_select(0, hi), f1 = flat_f.index_select(0, hi);
  auto c1 = flat_c.index_select(0, hi);
  auto state_at = [&](const torch::Tensor& theta) { return DenseOutput(theta, y0, f0, y1, f1, c1, step); };

  const StepModels models = ModelSteps(p, redshift, b, flat_y, flat_f, steps, rp, zp, options);
  auto [theta, z_theta] =
      Crossings([&](const torch::Tensor& th) { return RedshiftAt(metric, state_at(th), redshift); }, models.model,
                models.crossings, tgt, options);
  torch::Tensor slope;
  {
    torch::AutoGradMode enable(true);
    slope = torch::autograd::grad({z_theta.sum()}, {theta}, {}, /*retain_graph=*/true)[0].detach();
  }
  auto state = state_at(theta.detach() - (z_theta - tgt) / slope);
  auto d_l = LuminosityDistanceAt(metric, state, tgt, redshift);
  auto d_a = d_l / (1.0 + tgt).square();
  out.luminosity_distance = out.luminosity_distance.index_put({idx}, d_l);
  out.angular_distance = out.angular_distance.index_put({idx}, d_a);
  out.source = out.source.index_put({idx}, state.narrow(1, 0, 8));
  if (o.hubble_distance) {
    out.hubble_distance = out.hubble_distance.index_put({idx}, HubbleDistance(metric, state, redshift, o.fused));
  }
  return out;
}

// The reference implementation's read-out (geodesics.py@0bd4b52:192-262):
// the ray sampled at `saved_points` affine parameters evenly spaced over
// [0, lambda_end] and nowhere else; the samples the ray reached (up to its
// last valid state) from the dense output, z = F(g, k) - 1 and d = (1+z)
// sqrt(|x - x_obs|^2 + 1e-9) in units of 1000 Mpc; then ReferenceDistances.
// Every target gets a distance; `reached` says which lie at or below the
// largest sampled z.
SkyDistances ReadOffReference(MetricModel& metric, const Paths& p, const Redshift& redshift,
                              const torch::Tensor& z_target, const torch::TensorOptions& options,
                              const RayTracerOptions& o, int64_t saved_points) {
  TORCH_CHECK(!redshift.physical && p.y.front().size(0) == 1,
              "the reference read-out reads the reference ray (reference mode)");
  TORCH_CHECK(!o.hubble_distance, "the reference read-out gives no D_H");
  const int64_t ns = std::max<int64_t>(1, saved_points), last = p.last[0];
  const double lam_stop = p.lambda[last];
  std::vector<torch::Tensor> states;
  for (int64_t q = 0; q < ns; ++q) {
    const double lq = ns == 1 ? 0.0 : o.lambda_end * static_cast<double>(q) / static_cast<double>(ns - 1);
    if (lq < lam_stop) break;  // past the ray's end: the reference's solver gives inf there
    if (last == 0) {
      states.push_back(p.y[0]);
      continue;
    }
    int64_t i = 0;  // the step containing lq (lambda decreases)
    while (i + 1 < last && p.lambda[i + 1] > lq) ++i;
    const double h = p.lambda[i + 1] - p.lambda[i];
    auto theta = torch::full({1}, std::clamp((lq - p.lambda[i]) / h, 0.0, 1.0), options);
    states.push_back(DenseOutput(theta, p.y[i], p.f[i], p.y[i + 1], p.f[i + 1], p.c[i + 1],
                                 torch::full({1, 1}, h, options)));
  }
  auto s = torch::cat(states, 0);
  auto z = RedshiftAt(metric, s, redshift);
  auto d = (1.0 + z) * redshift.CoordinateDistance(s, 1e-9);
  auto target = z_target.to(options);
  SkyDistances out;
  out.stop = p.stop;
  out.luminosity_distance = ReferenceDistances(z, d, ns, target) * 1000.0;
  out.angular_distance = out.luminosity_distance / (1.0 + target).square();
  out.z_max = z.max().view({1});
  out.reached = (target <= out.z_max.detach()).to(torch::kCPU);
  out.source = torch::zeros({target.size(0), 8}, options);
  return out;
}

}  // namespace ray
}  // namespace lumpy
