// The analytic metric plugins against the Friedmann equations and known
// solutions, float64, 1e-10 relative (absolute where the exact value is 0).

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"

namespace lumpy {
namespace {

using namespace lumpy::testing;
constexpr double kTol = 1e-10;
constexpr double kH0 = 70.0 / 299792.458 * 1000.0;  // 70 km/s/Mpc in 1/(1000 Mpc)

Geometry Of(const std::shared_ptr<MetricModel>& m, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return Geometry(m->jet(x, 2));
}

double MaxRel(const torch::Tensor& got, const torch::Tensor& want) {
  return MaxAbs((got - want) / want.abs());
}

torch::Tensor Observer() { return torch::tensor({1.0, 0.0, 0.0, 0.0}, torch::kFloat64).view({1, 4}); }

TEST(FlrwPlugin, EinsteinDeSitter) {
  auto m = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}});
  auto x = RandomPoints(64, {-1.5, -1, -1, -1}, {1, 1, 1, 1});
  auto geo = Of(m, x);
  // tau = time since the big bang; H = 2/(3 tau); R = 4/(3 tau^2); G^0_0 = -3 H^2.
  auto tau = x.select(1, 0) - (1.0 - 2.0 / (3.0 * kH0));
  EXPECT_LT(MaxRel(geo.ricci_scalar(), 4.0 / (3.0 * tau * tau)), kTol);
  EXPECT_LT(MaxRel(geo.einstein_mixed().select(1, 0).select(1, 0), -4.0 / (3.0 * tau * tau)), kTol);
  EXPECT_NEAR(Of(m, Observer()).hubble_mean().item<double>(), kH0, kTol * kH0);
  EXPECT_NEAR(Of(m, Observer()).metric()[0][1][1].item<double>(), 1.0, kTol);
}

TEST(FlrwPlugin, DeSitter) {
  auto m = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("de_sitter")}, {"h0", 50.0}});
  const double h = 50.0 / 299792.458 * 1000.0;
  auto geo = Of(m, RandomPoints(64, {-4, -1, -1, -1}, {1, 1, 1, 1}));
  EXPECT_LT(MaxAbs(geo.ricci_scalar() / (12 * h * h) - 1.0), kTol);
  auto expected = -3 * h * h * torch::eye(4, torch::kFloat64).expand({64, 4, 4});
  EXPECT_LT(MaxAbs(geo.einstein_mixed() - expected) / (3 * h * h), kTol);
}

TEST(FlrwPlugin, FlatLcdmObeysTheFriedmannEquations) {
  const double om = 0.3, ol = 0.7;
  auto m = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("lcdm")}, {"omega_m", om}});
  auto x = RandomPoints(64, {-2, -1, -1, -1}, {1, 1, 1, 1});
  auto geo = Of(m, x);
  auto a3 = torch::pow(geo.metric().select(1, 1).select(1, 1), 1.5);  // g_11 = a^2
  // H^2 = H0^2 (Om a^-3 + OL); R = 6 (a''/a + H^2) = 3 H0^2 (4 OL + Om a^-3).
  EXPECT_LT(MaxRel(geo.hubble_mean().square(), kH0 * kH0 * (om / a3 + ol)), kTol);
  EXPECT_LT(MaxRel(geo.ricci_scalar(), 3 * kH0 * kH0 * (4 * ol + om / a3)), kTol);
  EXPECT_LT(MaxRel(geo.einstein_mixed().select(1, 0).select(1, 0), -3 * kH0 * kH0 * (om / a3 + ol)),
            kTol);
  EXPECT_NEAR(Of(m, Observer()).hubble_mean().item<double>(), kH0, kTol * kH0);
  EXPECT_NEAR(Of(m, Observer()).metric()[0][1][1].item<double>(), 1.0, kTol);
}

TEST(MinkowskiPlugin, IsFlat) {
  auto m = MakeBuiltIn<MetricModel>("minkowski");
  auto geo = Of(m, RandomPoints(8, {-4, -1, -1, -1}, {1, 1, 1, 1}));
  EXPECT_EQ(MaxAbs(geo.metric() - torch::diag(torch::tensor({-1.0, 1.0, 1.0, 1.0}, torch::kFloat64))), 0.0);
  EXPECT_EQ(MaxAbs(geo.ricci()), 0.0);
}

TEST(MetricPlugins, ReportWhereTheyAreDefined) {
  auto eds = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}});
  const double big_bang = 1.0 - 2.0 / (3.0 * kH0);  // about -1.855
  auto t = torch::tensor({{big_bang - 0.1, 0.0, 0.0, 0.0}, {big_bang + 0.1, 0.0, 0.0, 0.0}},
                         torch::kFloat64);
  EXPECT_FALSE(eds->in_domain(t)[0].item<bool>());
  EXPECT_TRUE(eds->in_domain(t)[1].item<bool>());
  auto bh = MakeBuiltIn<MetricModel>("schwarzschild", {{"mass", 1.0}});
  auto r = torch::tensor({{0.0, 0.4, 0.0, 0.0}, {0.0, 0.6, 0.0, 0.0}}, torch::kFloat64);
  EXPECT_FALSE(bh->in_domain(r)[0].item<bool>());
  EXPECT_TRUE(bh->in_domain(r)[1].item<bool>());
  auto kasner = MakeBuiltIn<MetricModel>("kasner");
  EXPECT_FALSE(kasner->in_domain(-t.abs())[0].item<bool>());
  auto desitter = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("de_sitter")}});
  EXPECT_TRUE(desitter->in_domain(t).all().item<bool>());
}

TEST(RegistryMake, ChecksOverridesAgainstTheDeclaration) {
  EXPECT_EQ(BuiltInPlugins().Make<MetricModel>("flrw", {{"omega_m", 1.5}}).status().message(),
            "omega_m: must be in (0, 1), got 1.5");
  EXPECT_EQ(BuiltInPlugins().Make<MetricModel>("flrw", {{"omega", 0.3}}).status().message(),
            "omega: unknown key");
  EXPECT_EQ(BuiltInPlugins().Make<MetricModel>("nope").status().message(),
            "no metric plugin \"nope\" is loaded");
}

}  // namespace
}  // namespace lumpy
