// The contracted Bianchi identity nabla_m G^m_n = 0 for the SIREN metric (far
// from any symmetric solution: omega0 = 10, large outputs), float64:
//   nabla_m G^m_n = d_m G^m_n + Gamma^m_ml G^l_n - Gamma^l_mn G^m_l.
// d_m G^m_n by central differences of the Taylor-jet Einstein tensor,
// Richardson-extrapolated (error O(h^4)); it must cancel the Christoffel
// terms to 1e-8 of the size of the terms themselves. A wrong index in the
// jet or the curvature breaks it.

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"

namespace lumpy {
namespace {

using namespace lumpy::testing;

torch::Tensor EinsteinMixed(MetricModel& m, const torch::Tensor& x) {
  return Geometry(m.jet(x, 2)).einstein_mixed();
}

TEST(Bianchi, ContractedIdentityHoldsForTheSiren) {
  torch::manual_seed(2);
  auto siren = MakeBuiltIn<MetricModel>("siren", {{"omega0", 3.0}, {"output_init_std", 0.2}});
  siren->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  auto x = RandomPoints(32, {-1, -0.8, -0.8, -0.8}, {1, 0.8, 0.8, 0.8});
  Geometry geo(siren->jet(x, 2));
  const auto& gmix = geo.einstein_mixed();   // [B,m,n]
  const auto& gamma = geo.christoffel();     // [B,a,b,c]
  auto term1 = torch::einsum("zmml,zln->zn", {gamma, gmix});
  auto term2 = torch::einsum("zlmn,zml->zn", {gamma, gmix});
  auto divergence_with = [&](double h) {
    torch::Tensor div = torch::zeros({x.size(0), 4}, torch::kFloat64);
    for (int m = 0; m < 4; ++m) {
      auto step = torch::zeros({1, 4}, torch::kFloat64);
      step[0][m] = h;
      auto d = (EinsteinMixed(*siren, x + step) - EinsteinMixed(*siren, x - step)) / (2 * h);
      div += d.select(1, m);  // d_m G^m_n
    }
    return div;
  };
  auto residual = [&](const torch::Tensor& div) { return MaxAbs(div + term1 - term2); };
  // Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 error of the differences.
  const double h = 2e-4;
  auto coarse = divergence_with(h), fine = divergence_with(h / 2);
  auto divergence = (4 * fine - coarse) / 3;
  auto scale = std::max({MaxAbs(divergence), MaxAbs(term1), MaxAbs(term2)});
  ASSERT_GT(scale, 1e-3);  // the identity is not trivially 0 = 0 here
  EXPECT_LT(residual(divergence) / scale, 1e-8);
  // What is left of the plain differences is truncation: it falls as h^2.
  EXPECT_NEAR(residual(coarse) / residual(fine), 4.0, 0.2);
  // And it is sharp: dropping one Christoffel term breaks it by far.
  EXPECT_GT(MaxAbs(divergence + term1) / scale, 1e-2);
}

}  // namespace
}  // namespace lumpy
