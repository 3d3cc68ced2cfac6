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

TEST(FlrwPlugin, ClosedFormJetEqualsTheNestedAutogradJet) {
  // flrw computes its jet in closed form; the SDK's nested-autograd jet of its
  // metric() is the oracle: every component to 1e-12 relative (of the largest),
  // and the gradients of the second derivatives with respect to the fitted
  // h0 and Omega_m too.
  for (const char* kind : {"eds", "de_sitter", "lcdm"}) {
    auto m = MakeBuiltIn<MetricModel>(
        "flrw", {{"scale_factor", std::string(kind)}, {"h0", 67.0}, {"h0_trainable", true}});
    auto* analytic = dynamic_cast<AnalyticMetric*>(m.get());
    ASSERT_NE(analytic, nullptr);
    auto x = RandomPoints(16, {-1.5, -1, -1, -1}, {1, 1, 1, 1});
    auto fast = m->jet(x, 2);
    auto slow = AutogradJet([&](const torch::Tensor& p) { return analytic->metric(p); }, x, 2);
    for (auto [f, s] : {std::pair{fast.g, slow.g}, {fast.dg, slow.dg}, {fast.d2g, slow.d2g}}) {
      EXPECT_EQ(f.sizes(), s.sizes()) << kind;
      EXPECT_LT(MaxAbs(f - s) / MaxAbs(s), 1e-12) << kind;
    }
    auto h0 = m->physical_parameters().at(0).value;
    auto g_fast = torch::autograd::grad({fast.d2g.sum()}, {h0})[0].item<double>();
    auto g_slow = torch::autograd::grad({slow.d2g.sum()}, {h0})[0].item<double>();
    EXPECT_NEAR(g_fast, g_slow, 1e-12 * std::abs(g_slow)) << kind;
  }
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

// Trainable h0 and omega_m: the engine sees them as physical parameters, and
// autograd derivatives of the curvature with respect to them equal central
// finite differences (float64, 1e-7 relative).
TEST(FlrwPlugin, H0AndOmegaMAreTrainableWithExactGradients) {
  const auto make = TrainableLcdm;

  auto m = make(70.0, 0.3);
  auto params = m->physical_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "h0");
  EXPECT_EQ(params[0].min, 50.0);
  EXPECT_EQ(params[0].max, 90.0);
  EXPECT_EQ(params[1].name, "omega_m");
  EXPECT_TRUE(params[0].value.requires_grad() && params[1].value.requires_grad());
  EXPECT_TRUE(m->parameters().empty());  // not network weights

  auto x = RandomPoints(16, {-2, -1, -1, -1}, {1, 1, 1, 1});
  // A smooth functional of the curvature and the expansion.
  auto functional = [&](const std::shared_ptr<MetricModel>& model) {
    Geometry geo(model->jet(x, 2));
    return geo.ricci_scalar().sum() + 1e3 * geo.hubble_mean().square().sum();
  };
  auto value = functional(m);
  auto grads = torch::autograd::grad({value}, {params[0].value, params[1].value});
  const double eps_h = 1e-4, eps_om = 1e-6;
  torch::NoGradGuard no_grad;
  const double fd_h = (functional(make(70.0 + eps_h, 0.3)) - functional(make(70.0 - eps_h, 0.3)))
                          .item<double>() / (2 * eps_h);
  const double fd_om = (functional(make(70.0, 0.3 + eps_om)) - functional(make(70.0, 0.3 - eps_om)))
                           .item<double>() / (2 * eps_om);
  EXPECT_NEAR(grads[0].item<double>() / fd_h, 1.0, 1e-7);
  EXPECT_NEAR(grads[1].item<double>() / fd_om, 1.0, 1e-7);
}

TEST(FlrwPlugin, FittingOmegaMNeedsLcdmAndBoundsAreChecked) {
  EXPECT_EQ(BuiltInPlugins()
                .Make<MetricModel>("flrw", {{"scale_factor", std::string("eds")},
                                            {"omega_m_trainable", true}})
                .status()
                .message(),
            "omega_m_trainable: only scale_factor = \"lcdm\" depends on omega_m");
  EXPECT_EQ(BuiltInPlugins()
                .Make<MetricModel>("flrw", {{"h0", 95.0}, {"h0_trainable", true}})
                .status()
                .message(),
            "h0: the initial value must lie within h0_bounds [50, 90], got 95");
  EXPECT_EQ(BuiltInPlugins()
                .Make<MetricModel>("flrw", {{"h0_bounds", std::vector<double>{80.0, 60.0}}})
                .status()
                .message(),
            "h0_bounds: must be [min, max] with min < max");
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
