#pragma once
// Closed-form spacetimes for tests, written as metric functions of
// x = (t, x, y, z) [B,4] -> g [B,4,4], and a MetricModel that wraps one
// (its jet is the SDK's autograd jet).

#include <cmath>

#include "lumpy/lumpy.h"

namespace lumpy::testing {

// Flat FLRW: ds^2 = -dt^2 + a(t)^2 (dx^2 + dy^2 + dz^2).
inline torch::Tensor Flrw(const torch::Tensor& x,
                          const std::function<torch::Tensor(const torch::Tensor&)>& a) {
  auto a2 = a(x.select(1, 0)).square();
  auto zero = torch::zeros_like(a2);
  auto diag = torch::stack({-torch::ones_like(a2), a2, a2, a2}, 1);
  return torch::diag_embed(diag);
}

// Einstein-de Sitter with H0 today (t = 1, a = 1): a = ((t - t0)/(1 - t0))^(2/3),
// t0 = 1 - 2/(3 H0).
inline torch::Tensor EdsScaleFactor(const torch::Tensor& t, double h0) {
  const double age = 2.0 / (3.0 * h0);
  return torch::pow((t - (1.0 - age)) / age, 2.0 / 3.0);
}

// Schwarzschild of mass m in isotropic Cartesian coordinates.
inline torch::Tensor SchwarzschildIsotropic(const torch::Tensor& x, double m) {
  auto r = torch::sqrt(x.narrow(1, 1, 3).square().sum(1));
  auto q = m / (2.0 * r);
  auto lapse = (1.0 - q) / (1.0 + q);
  auto psi4 = torch::pow(1.0 + q, 4);
  return torch::diag_embed(torch::stack({-lapse.square(), psi4, psi4, psi4}, 1));
}

// Kasner: ds^2 = -dt^2 + sum_i t^(2 p_i) dx_i^2 (t > 0).
inline torch::Tensor Kasner(const torch::Tensor& x, double p1, double p2, double p3) {
  auto t = x.select(1, 0);
  return torch::diag_embed(torch::stack(
      {-torch::ones_like(t), torch::pow(t, 2 * p1), torch::pow(t, 2 * p2), torch::pow(t, 2 * p3)},
      1));
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

class FunctionMetric : public MetricModel {
 public:
  explicit FunctionMetric(MetricFunction f) : f_(std::move(f)) {}
  Jet jet(const torch::Tensor& x, int order) override {
    return AutogradJet(f_, x, order, torch::GradMode::is_enabled());
  }

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

}  // namespace lumpy::testing
