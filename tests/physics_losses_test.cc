// The built-in physics plugins, loaded as plugins, against closed forms on
// analytic spacetimes (float64). Tolerances are stated per test.

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"
#include "physics/point_set_context.h"

namespace lumpy {
namespace {

using namespace lumpy::testing;

constexpr double kH0 = 70.0 / 299792.458 * 1000.0;  // 70 km/s/Mpc in 1/(1000 Mpc)

// A term that asks for a higher order than an earlier one extends the
// context's Geometry in place: the earlier reference stays valid (it used to
// dangle: the cache replaced itself), now of order 2, with what it had
// computed unchanged and the curvature available.
TEST(PointSetContext, AHigherOrderExtendsTheSameGeometry) {
  auto eds = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}});
  auto x = RandomPoints(16, {-1, -1, -1, -1}, {1, 1, 1, 1});
  PointSetContext ctx(*eds, x);
  Geometry& first = ctx.geometry(1);
  const auto h = first.hubble_rates().detach().clone();
  Geometry& second = ctx.geometry(2);
  EXPECT_EQ(&first, &second);
  EXPECT_EQ(first.order(), 2);
  EXPECT_TRUE(torch::equal(first.hubble_rates().detach(), h));
  // EdS: R = 6 (a''/a + (a'/a)^2) = 3 H^2 (dust, 8 pi G rho = 3 H^2, R = 8 pi G rho).
  auto hm = first.hubble_mean().detach();
  EXPECT_LT((first.ricci_scalar().detach() - 3.0 * hm.square()).abs().max().item<double>(), 1e-10);
  Geometry& observer = ctx.observer(1);
  EXPECT_EQ(&ctx.observer(2), &observer);
  EXPECT_EQ(observer.order(), 2);
}

// What the CLI and `lumpy report` ask a term instead of its plugin's name
// (lumpy/report.h), found across the plugin's library boundary: the EFE
// residual fills the probe tables' efe_residual column; supernova_chi2 has a
// Hubble diagram (checked against the report's closed forms in ReportTest);
// wec has neither.
TEST(PhysicsPlugins, TermsSayWhatTheyOfferTheCli) {
  auto efe = MakeBuiltIn<LossTerm>("efe_residual");
  EXPECT_EQ(ProbeColumnOf(*efe), "efe_residual");
  EXPECT_EQ(HubbleDiagramOf(*efe), nullptr);
  auto sn = MakeBuiltIn<LossTerm>("supernova_chi2");
  EXPECT_NE(HubbleDiagramOf(*sn), nullptr);
  EXPECT_EQ(ProbeColumnOf(*sn), "");
  auto wec = MakeBuiltIn<LossTerm>("wec");
  EXPECT_EQ(ProbeColumnOf(*wec), "");
  EXPECT_EQ(HubbleDiagramOf(*wec), nullptr);
}

TEST(PhysicsPlugins, EinsteinDeSitterIsAnExactDustSolutionWithOmegaOne) {
  // Both residual forms vanish to rounding (|r| <= 1e-10, so r^2 <= 1e-20).
  auto eds = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}});
  auto x = RandomPoints(64, {-1, -1, -1, -1}, {1, 1, 1, 1});
  for (const char* form : {"mixed", "covariant"}) {
    auto efe = MakeBuiltIn<LossTerm>("efe_residual",
                              {{"omega_m", 1.0}, {"form", std::string(form)}});
    PointSetContext ctx(*eds, x);
    auto value = efe->evaluate(ctx);
    EXPECT_EQ(value.per_point.sizes(), (std::vector<int64_t>{64}));
    EXPECT_LT(MaxAbs(value.per_point), 1e-20) << form;
  }
}

TEST(PhysicsPlugins, UnderdenseDustLeavesTheClosedFormResidual) {
  // EdS expansion with Omega_m = 0.3: only r^0_0 = (-3H^2 + kappa rho) det(gamma)
  // survives, = -3 (1 - 0.3) H0^2 a^-3 a^6 = -2.1 H0^2 a^3; L = r00^2 / 16.
  auto eds = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}});
  auto x = RandomPoints(64, {-1, -1, -1, -1}, {1, 1, 1, 1});
  auto efe = MakeBuiltIn<LossTerm>("efe_residual", {{"omega_m", 0.3}});
  PointSetContext ctx(*eds, x);
  // a(t) = ((t - t_b)/(1 - t_b))^(2/3), t_b = 1 - 2/(3 H0): written out independently.
  const double age = 2.0 / (3.0 * kH0);
  auto a = torch::pow((x.select(1, 0) - (1.0 - age)) / age, 2.0 / 3.0);
  auto r00 = -2.1 * kH0 * kH0 * torch::pow(a, 3);
  auto expected = r00.square() / 16.0;
  EXPECT_LT(MaxAbs(efe->evaluate(ctx).per_point / expected - 1.0), 1e-10);
}

TEST(PhysicsPlugins, VacuumResidualVanishesOnSchwarzschild) {
  auto bh = MakeBuiltIn<MetricModel>("schwarzschild", {{"mass", 1.0}});
  auto x = RandomPoints(64, {-1, 0.6, 0.6, 0.6}, {1, 1.7, 1.7, 1.7});
  auto efe = MakeBuiltIn<LossTerm>("efe_residual",
                            {{"matter", std::string("vacuum")}, {"form", std::string("covariant")}});
  PointSetContext ctx(*bh, x);
  EXPECT_LT(MaxAbs(efe->evaluate(ctx).per_point), 1e-20);
}

TEST(PhysicsPlugins, ACosmologicalConstantMakesDeSitterAVacuumSolution) {
  // de Sitter a = exp(H0 (t - 1)) has G_mn = -3 H0^2 g_mn (MTW signs), so
  // with Lambda = 3 H0^2 the vacuum residual G + Lambda g vanishes to
  // rounding (|r| <= 1e-10, r^2 <= 1e-20) in either form.
  auto ds = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("de_sitter")}});
  auto x = RandomPoints(64, {-1, -1, -1, -1}, {1, 1, 1, 1});
  const double lambda = 3.0 * kH0 * kH0;
  for (const char* form : {"mixed", "covariant"}) {
    auto efe = MakeBuiltIn<LossTerm>("efe_residual", {{"matter", std::string("vacuum")},
                                                      {"form", std::string(form)},
                                                      {"cosmological_constant", lambda}});
    PointSetContext ctx(*ds, x);
    EXPECT_LT(MaxAbs(efe->evaluate(ctx).per_point), 1e-20) << form;
  }
  // Without it, mixed form: r^m_n = -3 H0^2 delta^m_n det(gamma), det(gamma)
  // = a^6, so four diagonal components of 16 give L = (3 H0^2 a^6)^2 / 4.
  auto efe = MakeBuiltIn<LossTerm>("efe_residual", {{"matter", std::string("vacuum")}});
  PointSetContext ctx(*ds, x);
  auto a6 = torch::exp(6.0 * kH0 * (x.select(1, 0) - 1.0));
  auto expected = (lambda * a6).square() / 4.0;
  EXPECT_LT(MaxAbs(efe->evaluate(ctx).per_point / expected - 1.0), 1e-10);
}

TEST(PhysicsPlugins, WecViolationIsMinusTheNegativePartOfR) {
  // a = 1 + 0.3 cos t: R = 6 (a''/a + (a'/a)^2) changes sign over t in [-4, 1].
  FunctionMetric m([](const torch::Tensor& p) {
    return Flrw(p, [](const torch::Tensor& t) { return 1.0 + 0.3 * torch::cos(t); });
  });
  auto x = RandomPoints(256, {-4, -1, -1, -1}, {1, 1, 1, 1});
  auto t = x.select(1, 0);
  auto a = 1.0 + 0.3 * torch::cos(t), ad = -0.3 * torch::sin(t), add = -0.3 * torch::cos(t);
  auto r = 6.0 * (add / a + (ad / a).square());
  ASSERT_GT((r < 0).sum().item<int64_t>(), 10);
  ASSERT_GT((r > 0).sum().item<int64_t>(), 10);
  auto wec = MakeBuiltIn<LossTerm>("wec");
  PointSetContext ctx(m, x);
  auto v = wec->evaluate(ctx);
  EXPECT_LT(MaxAbs(v.per_point - torch::relu(-r)), 1e-10);
  EXPECT_NEAR(v.value.item<double>(), torch::relu(-r).mean().item<double>(), 1e-10);
}

TEST(PhysicsPlugins, SoftQuadraticAndUniform) {
  auto handler = MakeBuiltIn<ConstraintHandler>("soft_quadratic", {{"weight", 2.5}});
  auto v = torch::tensor({0.0, 1.0, 2.0, 0.5}, torch::kFloat64);
  auto p = handler->penalty(v);
  EXPECT_LT(MaxAbs(p.per_point - 2.5 * v * v), 1e-15);
  EXPECT_DOUBLE_EQ(p.total.item<double>(), 2.5 * (0 + 1 + 4 + 0.25) / 4);
  auto uniform = MakeBuiltIn<CurriculumWeighter>("uniform");
  EXPECT_DOUBLE_EQ(uniform->reduce(torch::zeros({4, 4}), v).item<double>(), 3.5 / 4);
}

TEST(PhysicsPlugins, SirenStartsNearMinkowskiAndMapsOutputsAsDocumented) {
  torch::manual_seed(0);
  auto siren = MakeBuiltIn<MetricModel>("siren");
  siren->to(torch::kFloat64);
  auto x = RandomPoints(32, {-4, -1, -1, -1}, {1, 1, 1, 1});
  torch::NoGradGuard no_grad;
  auto jet = siren->jet(x, 0);
  auto eta = torch::diag(torch::tensor({-1.0, 1.0, 1.0, 1.0}, torch::kFloat64));
  // Last layer N(0, 1e-4^2): g within ~1e-3 of eta; signature (-,+,+,+) and symmetry exact.
  EXPECT_LT(MaxAbs(jet.g - eta), 5e-3);
  EXPECT_EQ(MaxAbs(jet.g - jet.g.transpose(1, 2)), 0.0);
  EXPECT_TRUE((jet.g.select(1, 0).select(1, 0) < 0).all().item<bool>());
}

}  // namespace
}  // namespace lumpy
