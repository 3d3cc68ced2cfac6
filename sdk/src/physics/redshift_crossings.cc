#include "physics/redshift_crossings.h"

#include <cmath>

namespace lumpy::ray {

std::vector<double> ModelCrossings(const std::vector<double>& z0, const std::vector<double>& d0,
                                   const std::vector<double>& z1, const std::vector<double>& d1,
                                   const std::vector<double>& target) {
  std::vector<double> out(target.size(), NAN);
  for (size_t j = 0; j < target.size(); ++j) {
    const double za = z0[j], zb = z1[j], da = d0[j], db = d1[j], zt = target[j];
    if (!std::isfinite(za) || !std::isfinite(zb) || !std::isfinite(da) || !std::isfinite(db) ||
        !(za < zt && zt <= zb)) {
      continue;
    }
    double a = 0, b = 1, t = (zt - za) / (zb - za);
    for (int it = 0; it < 60; ++it) {
      const double v = HermiteValue(t, za, da, zb, db) - zt;
      if (v < 0) a = t; else b = t;
      const double d = HermiteSlope(t, za, da, zb, db);
      double next = d != 0 ? t - v / d : 0.5 * (a + b);
      if (!(next > a && next < b)) next = 0.5 * (a + b);
      const bool done = std::abs(next - t) < 1e-15;
      t = next;
      if (done) break;
    }
    out[j] = t;
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> Crossings(const std::function<torch::Tensor(const torch::Tensor&)>& z_of,
                                                  const StepModel& model, const std::vector<double>& start,
                                                  const torch::Tensor& tgt, const torch::TensorOptions& options) {
  torch::Tensor theta, z_theta;
  const double tol = options.dtype() == torch::kFloat64 ? 1e-14 : 1e-7;
  torch::NoGradGuard no_grad;
  auto a = torch::zeros_like(tgt), b = torch::ones_like(tgt);
  auto fa = model.z0 - tgt, fb = model.z1 - tgt;
  auto last_below = torch::zeros(tgt.sizes(), tgt.options().dtype(torch::kBool));
  auto last_above = last_below.clone();
  auto guess = torch::tensor(start, torch::kFloat64).to(options);
  auto next = torch::where((guess > 0) & (guess < 1), guess, (fa / (fa - fb)).clamp(0, 1).nan_to_num(0.5));
  // A target is close enough once |z - z*| <= ztol: the Newton step then
  // leaves an error of order ztol^2 (1e-20 / 1e-10 relative).
  const auto ztol = (options.dtype() == torch::kFloat64 ? 1e-10 : 1e-5) * (1 + tgt);
  for (int it = 0; it < 60; ++it) {
    theta = next.detach().requires_grad_(true);
    {
      torch::AutoGradMode enable(true);  // also when the caller only evaluates
      z_theta = z_of(theta);
    }
    auto fz = z_theta.detach() - tgt;
    auto th = theta.detach();
    auto below = fz < 0, above = fz >= 0;
    a = torch::where(below, th, a);
    fa = torch::where(below, fz, fa);
    b = torch::where(below, b, th);
    fb = torch::where(below, fb, fz);
    // Illinois: b kept twice (theta replaced a twice): halve fb; and vice versa.
    fb = torch::where(below & last_below, 0.5 * fb, fb);
    fa = torch::where(above & last_above, 0.5 * fa, fa);
    last_below = below;
    last_above = above;
    next = a - fa * (b - a) / (fb - fa);
    next = torch::where((next > a) & (next < b), next, 0.5 * (a + b));
    auto newton = th - fz / model.Slope(th);
    next = torch::where((newton > a) & (newton < b), newton, next);
    next = torch::where(fz.abs() <= ztol, th, next);
    if ((next - th).abs().max().item<double>() < tol) break;
  }
  return {theta, z_theta};
}

}  // namespace lumpy::ray
