#include "lumpy/ray_tracer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lumpy/geometry.h"

namespace lumpy {
namespace {

// Dormand-Prince 5(4): stages c, the matrix a (its last row is the 5th-order
// solution), and e = b5 - b4 for the error estimate.
constexpr double kA[7][6] = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
constexpr double kE[7] = {35.0 / 384 - 5179.0 / 57600,      0,
                          500.0 / 1113 - 7571.0 / 16695,   125.0 / 192 - 393.0 / 640,
                          -2187.0 / 6784 + 92097.0 / 339200, 11.0 / 84 - 187.0 / 2100,
                          -1.0 / 40};

struct Rhs {
  torch::Tensor dy;   // [R,8]
  torch::Tensor g00;  // [R]
};

// dx/dl = k, dk^a/dl = -Gamma^a_bc k^b k^c.
Rhs Geodesic(MetricModel& metric, const torch::Tensor& y) {
  auto x = y.narrow(1, 0, 4), k = y.narrow(1, 4, 4);
  Geometry geo(metric.jet(x, 1));
  auto acc = -torch::einsum("rabc,rb,rc->ra", {geo.christoffel(), k, k});
  return {torch::cat({k, acc}, 1), geo.metric().select(1, 0).select(1, 0)};
}

// Cubic Hermite interpolant between (y0, f0) and (y1, f1) over a step h, at
// theta in [0,1] ([N] or [N,1]); y and f are [N,8], h is [N,1].
torch::Tensor Hermite(const torch::Tensor& theta, const torch::Tensor& y0, const torch::Tensor& f0,
                      const torch::Tensor& y1, const torch::Tensor& f1, const torch::Tensor& h) {
  auto t = theta.view({-1, 1});
  auto t2 = t * t, t3 = t2 * t;
  return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * h * f0 + (-2 * t3 + 3 * t2) * y1 +
         (t3 - t2) * h * f1;
}

// 1 + z from the reference observer (u_mu = (-sqrt|g00|, 0,0,0)).
torch::Tensor OnePlusZ(const torch::Tensor& g00, const torch::Tensor& k0, const torch::Tensor& obs) {
  return torch::sqrt(g00.abs()) * k0 / obs;
}

}  // namespace

ReferenceDistances TraceReference(MetricModel& metric, const torch::Tensor& z_target,
                                  const torch::TensorOptions& options,
                                  const RayTracerOptions& o) {
  TORCH_CHECK(z_target.dim() == 1 && z_target.size(0) > 0, "TraceReference: z must be [N], N > 0");
  ReferenceDistances out;
  const double z_top = z_target.max().item<double>();
  const double z_stop = std::max(o.z_stop, z_top + 0.2);

  // The observer and the initial direction k = (1, sqrt(|g00|/|g11|), 0, 0).
  auto x0 = torch::tensor({1.0, 0.0, 0.0, 0.0}, options).view({1, 4});
  auto g_obs = metric.jet(x0, 0).g;
  auto g00_obs = g_obs.select(1, 0).select(1, 0);
  auto kx = torch::sqrt(g00_obs.abs() / g_obs.select(1, 1).select(1, 1).abs());
  auto one = torch::ones({1}, options), zero = torch::zeros({1}, options);
  auto y = torch::cat({x0, torch::stack({one, kx, zero, zero}, 1)}, 1);  // [1,8]
  auto uk_obs = torch::sqrt(g00_obs.abs()) * 1.0;  // |u.k| at the observer, k0 = 1

  Rhs f = Geodesic(metric, y);
  std::vector<torch::Tensor> ys = {y}, fs = {f.dy}, g00s = {f.g00};
  std::vector<double> lambdas = {0.0}, zs = {0.0};

  double lam = 0.0, h = -std::abs(o.first_step);
  int64_t accepted = 0, rejected = 0;
  std::string reason = "steps";
  while (accepted + rejected < o.max_steps) {
    if (lam + h < o.lambda_end) h = o.lambda_end - lam;
    std::vector<torch::Tensor> k = {f.dy};
    Rhs last;
    torch::Tensor y_new;
    for (int s = 1; s < 7; ++s) {
      auto incr = kA[s][0] * k[0];
      for (int j = 1; j < s; ++j) {
        if (kA[s][j] != 0) incr = incr + kA[s][j] * k[j];
      }
      auto ys_stage = y + h * incr;
      last = Geodesic(metric, ys_stage);
      k.push_back(last.dy);
      if (s == 6) y_new = ys_stage;
    }
    double err;
    {
      torch::NoGradGuard no_grad;
      auto e = kE[0] * k[0];
      for (int j = 2; j < 7; ++j) e = e + kE[j] * k[j];
      e = h * e;
      auto scale = o.atol + o.rtol * torch::max(y.abs(), y_new.abs());
      err = (e.abs() / scale).max().item<double>();
      if (!std::isfinite(err) || !torch::isfinite(last.dy).all().item<bool>()) err = INFINITY;
    }
    if (!(err <= 1.0)) {
      ++rejected;
      h *= std::isfinite(err) ? std::max(0.2, 0.9 * std::pow(err, -0.2)) : 0.2;
      if (std::abs(h) < 1e-12) {
        reason = "non-finite";
        break;
      }
      continue;
    }
    ++accepted;
    lam += h;
    y = y_new;
    f = last;
    ys.push_back(y);
    fs.push_back(f.dy);
    g00s.push_back(f.g00);
    lambdas.push_back(lam);
    double z_now, t_now;
    {
      torch::NoGradGuard no_grad;
      z_now = (OnePlusZ(f.g00, y.select(1, 4), uk_obs) - 1.0).item<double>();
      t_now = y[0][0].item<double>();
    }
    zs.push_back(z_now);
    if (z_now > z_stop) {
      reason = "redshift";
      break;
    }
    if (t_now < o.t_min) {
      reason = "time";
      break;
    }
    if (lam <= o.lambda_end) {
      reason = "affine";
      break;
    }
    h *= std::min(5.0, std::max(0.2, 0.9 * std::pow(std::max(err, 1e-10), -0.2)));
  }
  out.stop = {reason, accepted, rejected};

  // The path: S saved states with graph, and their detached copies.
  auto path_y = torch::cat(ys, 0), path_f = torch::cat(fs, 0);  // [S,8]
  auto path_g00 = torch::cat(g00s, 0);                          // [S]
  const int64_t n_saved = path_y.size(0);
  auto zt = z_target.to(torch::kFloat64);
  // Running maximum of z: the first crossing of each target's redshift.
  std::vector<double> zmax_run(zs.size());
  int64_t argmax = 0;
  for (size_t i = 0; i < zs.size(); ++i) {
    zmax_run[i] = i == 0 ? zs[0] : std::max(zmax_run[i - 1], zs[i]);
    if (zs[i] >= zs[argmax]) argmax = static_cast<int64_t>(i);
  }
  out.z_max = OnePlusZ(path_g00[argmax], path_y[argmax][4], uk_obs).squeeze() - 1.0;
  auto zrun = torch::tensor(zmax_run, torch::kFloat64);
  out.reached = (zt > 0) & (zt <= zmax_run.back());
  const int64_t n = zt.size(0);
  out.luminosity_distance = torch::zeros({n}, options);
  auto idx_reached = out.reached.nonzero().view({-1});
  if (idx_reached.numel() == 0 || n_saved < 2) return out;

  auto targets = zt.index_select(0, idx_reached);
  auto upper = torch::searchsorted(zrun, targets).clamp(1, n_saved - 1);  // first i with z_i >= z*
  auto lower = upper - 1;
  auto lam_t = torch::tensor(lambdas, torch::kFloat64);
  auto step = (lam_t.index_select(0, upper) - lam_t.index_select(0, lower)).to(options).view({-1, 1});
  auto obs_d = uk_obs.detach();
  auto z_of = [&](const torch::Tensor& theta, const torch::Tensor& py, const torch::Tensor& pf,
                  const torch::Tensor& obs) {
    auto s = Hermite(theta, py.index_select(0, lower), pf.index_select(0, lower),
                     py.index_select(0, upper), pf.index_select(0, upper), step);
    auto g00 = metric.jet(s.narrow(1, 0, 4), 0).g.select(1, 0).select(1, 0);
    return std::make_pair(OnePlusZ(g00, s.select(1, 4), obs) - 1.0, s);
  };
  // Bracketed secant (Illinois) for theta in [0,1] with z(theta) = z*, on
  // detached values; then one differentiable Newton step, which gives the
  // exact first-order gradient of theta (implicit function theorem).
  auto py_d = path_y.detach(), pf_d = path_f.detach();
  auto tgt = targets.to(options);
  torch::Tensor theta;
  const double tol = options.dtype() == torch::kFloat64 ? 1e-14 : 1e-7;
  {
    torch::NoGradGuard no_grad;
    auto za = torch::tensor(zs, torch::kFloat64).to(options);
    auto lo = torch::zeros_like(tgt), hi = torch::ones_like(tgt);
    auto flo = za.index_select(0, lower) - tgt, fhi = za.index_select(0, upper) - tgt;
    theta = (flo / (flo - fhi)).clamp(0, 1).nan_to_num(0.5);
    for (int it = 0; it < 40; ++it) {
      auto fz = z_of(theta, py_d, pf_d, obs_d).first - tgt;
      auto below = fz < 0;
      lo = torch::where(below, theta, lo);
      flo = torch::where(below, fz, flo);
      hi = torch::where(below, hi, theta);
      fhi = torch::where(below, fhi, fz);
      auto next = lo - flo * (hi - lo) / (fhi - flo);
      auto mid = 0.5 * (lo + hi);
      // Fall back to bisection where the secant leaves the bracket.
      next = torch::where((next > lo) & (next < hi), next, mid);
      if ((next - theta).abs().max().item<double>() < tol) {
        theta = next;
        break;
      }
      theta = next;
    }
  }
  torch::Tensor slope;
  {
    torch::AutoGradMode enable(true);  // also when the caller only evaluates
    auto th = theta.detach().requires_grad_(true);
    slope = torch::autograd::grad({z_of(th, py_d, pf_d, obs_d).first.sum()}, {th})[0].detach();
  }
  auto z_at = z_of(theta, path_y, path_f, uk_obs).first;
  auto theta_g = theta - (z_at - tgt) / slope;
  auto state = Hermite(theta_g, path_y.index_select(0, lower), path_f.index_select(0, lower),
                       path_y.index_select(0, upper), path_f.index_select(0, upper), step);
  auto r = torch::sqrt(state.narrow(1, 1, 3).square().sum(1));
  auto d_l = (1.0 + tgt) * r * 1000.0;
  out.luminosity_distance = out.luminosity_distance.index_put({idx_reached}, d_l);
  return out;
}

}  // namespace lumpy
