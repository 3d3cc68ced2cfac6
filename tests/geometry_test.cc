// The geometry engine against closed forms, in float64 (docs/physics.md, "Closed-form checks").
// Tolerance: 1e-10 relative where the exact value is non-zero, 1e-10
// absolute where it is zero.

#include "lumpy/geometry.h"

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"
#include "physics/ricci_kernels.h"

namespace lumpy {
namespace {

using namespace lumpy::testing;
constexpr double kTol = 1e-10;

Geometry GeometryOf(const MetricFunction& f, const torch::Tensor& x, int order = 2) {
  return Geometry(AutogradJet(f, x, order, /*create_graph=*/false));
}

TEST(AutogradJet, MatchesAnalyticDerivativesOfFlrw) {
  // a = 1 + 0.3 cos t: a' = -0.3 sin t, a'' = -0.3 cos t.
  auto x = RandomPoints(64, {-4, -1, -1, -1}, {1, 1, 1, 1});
  auto jet = AutogradJet([](const torch::Tensor& p) {
    return Flrw(p, [](const torch::Tensor& t) { return 1.0 + 0.3 * torch::cos(t); });
  }, x, 2, false);
  auto t = x.select(1, 0);
  auto a = 1.0 + 0.3 * torch::cos(t), ad = -0.3 * torch::sin(t), add = -0.3 * torch::cos(t);
  for (int i = 1; i < 4; ++i) {
    EXPECT_LT(MaxAbs(jet.dg.select(1, i).select(1, i).select(1, 0) - 2 * a * ad), kTol);
    EXPECT_LT(MaxAbs(jet.d2g.select(1, i).select(1, i).select(1, 0).select(1, 0) -
                     2 * (ad * ad + a * add)),
              kTol);
  }
  // Everything else vanishes: g_00 is constant and nothing depends on x, y, z.
  EXPECT_LT(MaxAbs(jet.dg.narrow(3, 1, 3)), kTol);
  EXPECT_LT(MaxAbs(jet.d2g.select(1, 0)), kTol);
  EXPECT_EQ(jet.dg.sizes(), (std::vector<int64_t>{64, 4, 4, 4}));
  EXPECT_EQ(jet.d2g.sizes(), (std::vector<int64_t>{64, 4, 4, 4, 4}));
}

TEST(Geometry, FlatFlrwRicciScalarEinsteinAndHubbleRates) {
  auto x = RandomPoints(128, {-4, -1, -1, -1}, {1, 1, 1, 1});
  Geometry geo = GeometryOf([](const torch::Tensor& p) {
    return Flrw(p, [](const torch::Tensor& t) { return 1.0 + 0.3 * torch::cos(t); });
  }, x);
  auto t = x.select(1, 0);
  auto a = 1.0 + 0.3 * torch::cos(t), ad = -0.3 * torch::sin(t), add = -0.3 * torch::cos(t);
  auto h = ad / a;
  auto r_exact = 6.0 * (add / a + h * h);
  EXPECT_LT(MaxAbs((geo.ricci_scalar() - r_exact) / r_exact.abs().clamp_min(1.0)), kTol);
  auto g00 = geo.einstein_mixed().select(1, 0).select(1, 0);
  EXPECT_LT(MaxAbs((g00 + 3.0 * h * h) / (3.0 * h * h).clamp_min(1.0)), kTol);
  // G^i_j = -(2 a''/a + H^2) delta^i_j, G^0_i = G^i_0 = 0.
  auto gij_exact = -(2.0 * add / a + h * h);
  for (int i = 1; i < 4; ++i) {
    EXPECT_LT(MaxAbs(geo.einstein_mixed().select(1, i).select(1, i) - gij_exact), kTol);
    EXPECT_LT(MaxAbs(geo.einstein_mixed().select(1, 0).select(1, i)), kTol);
  }
  for (int i = 0; i < 3; ++i) EXPECT_LT(MaxAbs(geo.hubble_rates().select(1, i) - h), kTol);
  EXPECT_LT(MaxAbs(geo.hubble_mean() - h), kTol);
  EXPECT_LT(MaxAbs(geo.expansion() - 3 * h), kTol);
  EXPECT_LT(MaxAbs(geo.shear_squared()), kTol);
  EXPECT_LT(MaxAbs(geo.det_spatial_metric() - torch::pow(a, 6)), kTol);
  EXPECT_LT(MaxAbs(geo.lapse() - 1.0), kTol);
}

TEST(Geometry, DeSitterRicciScalarIsTwelveHSquared) {
  const double H = 0.7;
  auto x = RandomPoints(64, {-4, -1, -1, -1}, {1, 1, 1, 1});
  Geometry geo = GeometryOf([H](const torch::Tensor& p) {
    return Flrw(p, [H](const torch::Tensor& t) { return torch::exp(H * (t - 1.0)); });
  }, x);
  EXPECT_LT(MaxAbs(geo.ricci_scalar() / (12 * H * H) - 1.0), kTol);
  // Einstein tensor of a cosmological constant: G^m_n = -3 H^2 delta^m_n.
  auto expected = -3 * H * H * torch::eye(4, torch::kFloat64).expand({64, 4, 4});
  EXPECT_LT(MaxAbs(geo.einstein_mixed() - expected), kTol);
}

Geometry PluginGeometry(const std::string& name, std::map<std::string, ParamValue> params,
                        const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return Geometry(MakeBuiltIn<MetricModel>(name, std::move(params))->jet(x, 2));
}

TEST(Geometry, SchwarzschildIsRicciFlat) {
  // Outside the horizon (r > m/2 in isotropic coordinates), 1 <= r <~ 3.
  auto x = RandomPoints(128, {-1, 0.6, 0.6, 0.6}, {1, 1.7, 1.7, 1.7});
  Geometry geo = PluginGeometry("schwarzschild", {{"mass", 1.0}}, x);
  EXPECT_LT(MaxAbs(geo.ricci()), kTol);
  EXPECT_LT(MaxAbs(geo.ricci_scalar()), kTol);
  // ...and not trivially so: the Christoffel symbols are far from zero.
  EXPECT_GT(MaxAbs(geo.christoffel()), 0.05);
  // Static: no expansion.
  EXPECT_LT(MaxAbs(geo.hubble_rates()), kTol);
}

TEST(Geometry, KasnerIsRicciFlatWithKnownShear) {
  const double p1 = -1.0 / 3.0, p2 = 2.0 / 3.0, p3 = 2.0 / 3.0;
  auto x = RandomPoints(128, {0.5, -1, -1, -1}, {2.0, 1, 1, 1});
  Geometry geo = PluginGeometry("kasner", {{"p1", p1}, {"p2", p2}, {"p3", p3}}, x);
  EXPECT_LT(MaxAbs(geo.ricci()), kTol);
  auto t = x.select(1, 0);
  EXPECT_LT(MaxAbs(geo.hubble_rates().select(1, 0) - p1 / t), kTol);
  EXPECT_LT(MaxAbs(geo.hubble_rates().select(1, 1) - p2 / t), kTol);
  // sigma^2 = 1/2 sum_i (H_i - theta/3)^2 = (1 - 1/3) / (2 t^2) = 1 / (3 t^2).
  EXPECT_LT(MaxAbs(geo.shear_squared() * 3.0 * t * t - 1.0), kTol);
}

TEST(Geometry, NonVacuumKasnerIsNotRicciFlat) {
  // The test above can fail: exponents off the Kasner circle curve spacetime.
  auto x = RandomPoints(16, {0.5, -1, -1, -1}, {2.0, 1, 1, 1});
  Geometry geo = PluginGeometry("kasner", {{"p1", 0.5}, {"p2", 0.5}, {"p3", 0.5}}, x);
  EXPECT_GT(MaxAbs(geo.ricci()), 1e-2);
}

TEST(Geometry, MinkowskiInCurvilinearCoordinatesIsFlat) {
  auto x = RandomPoints(128, {-2, -1, -1, -1}, {1, 1, 1, 1});
  Geometry geo = GeometryOf(DisguisedMinkowski, x);
  // All 16 metric components are non-trivial here...
  EXPECT_GT(MaxAbs(geo.metric().select(1, 0).select(1, 1)), 0.05);
  EXPECT_GT(MaxAbs(geo.christoffel_derivative()), 0.01);
  // ...and the curvature still vanishes.
  EXPECT_LT(MaxAbs(geo.ricci()), kTol);
  EXPECT_LT(MaxAbs(geo.einstein_mixed()), kTol);
}

TEST(Geometry, AskingForCurvatureOfALowOrderJetIsAnError) {
  auto x = RandomPoints(4, {0, 0, 0, 0}, {1, 1, 1, 1});
  Geometry geo = GeometryOf(DisguisedMinkowski, x, /*order=*/1);
  EXPECT_NO_THROW(geo.christoffel());
  EXPECT_THROW(geo.ricci(), std::logic_error);
}

TEST(AutogradJet, KeepsTheGraphToParametersWhenAsked) {
  auto h = torch::tensor(0.5, torch::TensorOptions().dtype(torch::kFloat64).requires_grad(true));
  auto x = RandomPoints(8, {-1, -1, -1, -1}, {1, 1, 1, 1});
  auto f = [&](const torch::Tensor& p) {
    return Flrw(p, [&](const torch::Tensor& t) { return torch::exp(h * t); });
  };
  Geometry geo(AutogradJet(f, x, 2, /*create_graph=*/true));
  // R = 12 h^2 for a = e^{ht}: dR/dh = 24 h per point.
  auto r = geo.ricci_scalar().sum();
  auto grad = torch::autograd::grad({r}, {h})[0];
  EXPECT_NEAR(grad.item<double>(), 8 * 24 * 0.5, 1e-9);
}

// The fused Ricci kernel against the same formula as tensor operations:
// values and the gradients of <W, R> with respect to g^-1, dg and d2g, at
// random (symmetric, well-conditioned) jets. float64 to 1e-12 relative,
// float32 to 1e-4.
class FusedRicci : public ::testing::TestWithParam<torch::Dtype> {};

TEST_P(FusedRicci, MatchesTensorOperationsAndTheirGradients) {
  const torch::Dtype dtype = GetParam();
  const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-4;
  torch::manual_seed(11);
  const int64_t n = 50;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto eta = torch::diag(torch::tensor({-1.0, 1.0, 1.0, 1.0}, opts));
  auto p = 0.2 * torch::randn({n, 4, 4}, opts);
  auto g = eta + p + p.transpose(1, 2);
  auto dg = torch::randn({n, 4, 4, 4}, opts);
  dg = dg + dg.transpose(1, 2);
  auto d2g = torch::randn({n, 4, 4, 4, 4}, opts);
  d2g = d2g + d2g.transpose(1, 2);
  d2g = d2g + d2g.transpose(3, 4);
  auto w = torch::randn({n, 4, 4}, opts).to(dtype);
  auto inputs = [&] {
    return std::vector<torch::Tensor>{torch::inverse(g).to(dtype).requires_grad_(true),
                                      dg.to(dtype).requires_grad_(true),
                                      d2g.to(dtype).requires_grad_(true)};
  };
  auto a = inputs(), b = inputs();
  auto fused = RicciFused(a[0], a[1], a[2]);
  auto ops = RicciTensorOps(b[0], b[1], b[2]);
  const double scale = MaxAbs(ops);
  EXPECT_GT(scale, 1.0);
  EXPECT_LT(MaxAbs(fused - ops) / scale, tol);
  EXPECT_LT(MaxAbs(fused - fused.transpose(1, 2)) / scale, tol);  // R_mn is symmetric
  (fused * w).sum().backward();
  (ops * w).sum().backward();
  for (int i = 0; i < 3; ++i) {
    const double gscale = MaxAbs(b[i].grad());
    EXPECT_GT(gscale, 0.1) << "input " << i;
    EXPECT_LT(MaxAbs(a[i].grad() - b[i].grad()) / gscale, tol) << "input " << i;
  }
}

TEST_P(FusedRicci, RefusesSecondDerivativesWithAClearError) {
  auto x = RandomPoints(4, {0, 0, 0, 0}, {1, 1, 1, 1}).to(GetParam());
  auto h = torch::tensor(0.5, torch::TensorOptions().dtype(GetParam()).requires_grad(true));
  auto f = [&](const torch::Tensor& p) {
    return Flrw(p, [&](const torch::Tensor& t) { return torch::exp(h * t); });
  };
  Geometry geo(AutogradJet(f, x, 2, /*create_graph=*/true));
  auto r = geo.ricci_scalar().sum();
  try {
    torch::autograd::grad({r}, {h}, {}, /*retain_graph=*/true, /*create_graph=*/true);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not twice differentiable"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedRicci, ::testing::Values(torch::kFloat64, torch::kFloat32),
                         [](const auto& info) {
                           return info.param == torch::kFloat64 ? "float64" : "float32";
                         });

}  // namespace
}  // namespace lumpy
