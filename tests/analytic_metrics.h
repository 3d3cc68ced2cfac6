#pragma once
// Closed-form spacetimes the geometry tests need beyond the metric plugins,
// written as functions of x = (t, x, y, z) [B,4] -> g [B,4,4], and a
// MetricModel that wraps one (its jet is the SDK's autograd jet).

#include <cmath>

#include "lumpy/lumpy.h"

namespace lumpy::testing {

// Flat FLRW: ds^2 = -dt^2 + a(t)^2 (dx^2 + dy^2 + dz^2).
inline torch::Tensor Flrw(const torch::Tensor& x,
                          const std::function<torch::Tensor(const torch::Tensor&)>& a) {
  auto a2 = a(x.select(1, 0)).square();
  auto diag = torch::stack({-torch::ones_like(a2), a2, a2, a2}, 1);
  return torch::diag_embed(diag);
}

// Minkowski space in curvilinear coordinates: g = J^T eta J with
// X0 = t + 0.1 sin x, X1 = x + 0.1 t y, X2 = y + 0.05 z^2, X3 = z + 0.1 t x.
// Every component is non-trivial; every curvature tensor vanishes.
inline torch::Tensor DisguisedMinkowski(const torch::Tensor& x) {
  auto t = x.select(1, 0), X = x.select(1, 1), y = x.select(1, 2), z = x.select(1, 3);
  auto one = torch::ones_like(t), zero = torch::zeros_like(t);
  auto row0 = torch::stack({one, 0.1 * torch::cos(X), zero, zero}, 1);
  auto row1 = torch::stack({0.1 * y, one, 0.1 * t, zero}, 1);
  auto row2 = torch::stack({zero, zero, one, 0.1 * z}, 1);
  auto row3 = torch::stack({0.1 * X, 0.1 * t, zero, one}, 1);
  auto jac = torch::stack({row0, row1, row2, row3}, 1);  // [B, m, a] = dX^m/dx^a
  auto eta = torch::diag(torch::tensor({-1.0, 1.0, 1.0, 1.0}, x.options()));
  return torch::einsum("bma,mn,bnc->bac", {jac, eta, jac});
}

class FunctionMetric : public AnalyticMetric {
 public:
  explicit FunctionMetric(MetricFunction f) : f_(std::move(f)) {}
  torch::Tensor metric(const torch::Tensor& x) override { return f_(x); }

 private:
  MetricFunction f_;
};

// Uniform random points in [lo, hi] per coordinate, float64.
inline torch::Tensor RandomPoints(int64_t n, std::array<double, 4> lo, std::array<double, 4> hi,
                                  uint64_t seed = 7) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto u = at::rand({n, 4}, gen, torch::kFloat64);
  auto l = torch::tensor({lo[0], lo[1], lo[2], lo[3]}, torch::kFloat64);
  auto h = torch::tensor({hi[0], hi[1], hi[2], hi[3]}, torch::kFloat64);
  return l + (h - l) * u;
}

inline double MaxAbs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// Luminosity distance in Mpc of flat LCDM (h0 in km/s/Mpc):
// d_L = (1+z) c/H0 int_0^z dz'/E(z'), E = sqrt(Om (1+z)^3 + 1 - Om), by
// Simpson's rule on 20000 intervals (error far below 1e-10 relative).
inline double FlatLcdmLuminosityDistance(double z, double h0, double om) {
  const int n = 20000;
  double sum = 0;
  for (int j = 0; j <= n; ++j) {
    const double zz = z * j / n;
    const double w = (j == 0 || j == n) ? 1 : (j % 2 ? 4 : 2);
    sum += w / std::sqrt(om * std::pow(1 + zz, 3) + 1 - om);
  }
  return (1 + z) * 299792.458 / h0 * sum * z / n / 3;
}

}  // namespace lumpy::testing
