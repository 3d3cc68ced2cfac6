// The ltb metric plugin (an exact inhomogeneous dust universe) and the
// physical ray tracer on it, each against a method written here for the test
// (docs/physics.md, "An exact lumpy universe"), float64:
//   - the closed-form jet against the SDK's nested-autograd jet of the metric
//     written the textbook way, R'^2 n_i n_j + (R/r)^2 (delta_ij - n_i n_j);
//   - Einstein's equations with the solution's own dust density
//     rho = M' / (4 pi R^2 R'): G^m_n = 8 pi rho u^m u_n to round-off;
//   - A = 0 (Einstein-de Sitter), any centre: d_L(z) in closed form;
//   - observer at the centre: the radial null-geodesic ODE integrated here
//     (dt/dr = -R', d ln(1+z)/dr = Rdot', D_A = R), the same in every direction;
//   - an observer placed at the centre ([observer] event) sees the radial
//     ODE's sky; one off the centre, the moved void's;
//   - observer off the centre: d_L towards and away from the centre differ,
//     and the Jacobi map's D_A equals the area of a thin bundle of
//     neighbouring null geodesics integrated here by classical Runge-Kutta
//     (no deviation equation), projected on the source's screen.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include "analytic_metrics.h"
#include "built_in_plugins.h"
#include "lumpy/geometry.h"
#include "lumpy/ray_tracer.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;
using testing::MaxAbs;

constexpr double kPi = 3.14159265358979323846;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// A measured error for the test's XML report (--gtest_output=xml).
void Report(const char* key, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", value);
  ::testing::Test::RecordProperty(key, text);
}

// An LTB universe's constants, and R, R', Rdot' written out for the test.
struct Ltb {
  double m = 0.0272611, tb0 = -1.8551, amplitude = 0, width = 0.5;
  std::array<double, 3> center{0, 0, 0};

  std::shared_ptr<MetricModel> Plugin() const {
    return MakeBuiltIn<MetricModel>(
        "ltb", {{"m", m},
                {"tb0", tb0},
                {"bang_amplitude", amplitude},
                {"bang_width", width},
                {"center", std::vector<double>(center.begin(), center.end())}});
  }
  double c() const { return std::cbrt(4.5 * m); }
  double Bang(double r) const { return tb0 + amplitude * std::exp(-r * r / (width * width)); }
  double BangSlope(double r) const { return -2 * amplitude * r / (width * width) * std::exp(-r * r / (width * width)); }
  double R(double t, double r) const { return r * c() * std::pow(t - Bang(r), 2.0 / 3); }
  double Rp(double t, double r) const {  // dR/dr
    const double u = t - Bang(r);
    return c() * std::pow(u, 2.0 / 3) - r * c() * (2.0 / 3) * std::pow(u, -1.0 / 3) * BangSlope(r);
  }
  double Rdotp(double t, double r) const {  // d^2 R / dt dr
    const double u = t - Bang(r);
    return c() * (2.0 / 3) * std::pow(u, -1.0 / 3) + r * c() * (2.0 / 9) * std::pow(u, -4.0 / 3) * BangSlope(r);
  }
  // The metric as the textbook writes it (not at the centre): [B,4] -> [B,4,4].
  torch::Tensor Textbook(const torch::Tensor& x) const {
    auto X = x.narrow(1, 1, 3) - torch::tensor({center[0], center[1], center[2]}, x.options());
    auto r = X.norm(2, 1);
    auto n = X / r.unsqueeze(1);
    auto u = x.select(1, 0) - tb0 - amplitude * torch::exp(-r.square() / (width * width));
    auto big_r = r * c() * torch::pow(u, 2.0 / 3);
    auto slope = -2 * amplitude * r / (width * width) * torch::exp(-r.square() / (width * width));
    auto rp = c() * torch::pow(u, 2.0 / 3) - r * c() * (2.0 / 3) * torch::pow(u, -1.0 / 3) * slope;
    auto nn = n.unsqueeze(2) * n.unsqueeze(1);
    auto eye = torch::eye(3, x.options());
    auto spatial = rp.square().view({-1, 1, 1}) * nn + (big_r / r).square().view({-1, 1, 1}) * (eye - nn);
    auto g = torch::zeros({x.size(0), 4, 4}, x.options());
    g.select(1, 0).select(1, 0).fill_(-1);
    g.narrow(1, 1, 3).narrow(2, 1, 3).copy_(spatial);
    return g;
  }
};

// A void: the centre banged 0.6 (600 Myr x c / 1000 Mpc) earlier.
Ltb Void(std::array<double, 3> center) {
  Ltb l;
  l.amplitude = -0.6;
  l.width = 0.4;
  l.center = center;
  return l;
}

TEST(LtbPlugin, ClosedFormJetEqualsTheNestedAutogradJetOfTheTextbookMetric) {
  const Ltb l = Void({0.3, -0.2, 0.1});
  auto m = l.Plugin();
  auto x = testing::RandomPoints(32, {-0.5, -1, -1, -1}, {1, 1, 1, 1});
  ASSERT_TRUE(m->in_domain(x).all().item<bool>());
  auto fast = m->jet(x, 2);
  auto slow = AutogradJet([&](const torch::Tensor& p) { return l.Textbook(p); }, x, 2, false);
  for (auto [f, s] : {std::pair{fast.g, slow.g}, {fast.dg, slow.dg}, {fast.d2g, slow.d2g}}) {
    ASSERT_EQ(f.sizes(), s.sizes());
    EXPECT_LT(MaxAbs(f - s) / MaxAbs(s), 1e-12);
    Report("jet_rel_error", MaxAbs(f - s) / MaxAbs(s));
  }
}

// At the centre (and within 1e-9 of it) the jet is finite and continuous:
// P and Q are functions of r^2, so no 0/0 appears.
TEST(LtbPlugin, IsRegularAtTheCentre) {
  const Ltb l = Void({0.3, -0.2, 0.1});
  auto m = l.Plugin();
  auto at = torch::tensor({{0.5, 0.3, -0.2, 0.1}, {0.5, 0.3 + 1e-9, -0.2, 0.1}}, kF64);
  auto j = m->jet(at, 2);
  for (const auto& t : {j.g, j.dg, j.d2g}) {
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>());
    EXPECT_LT(MaxAbs(t[0] - t[1]), 1e-7 * (1 + MaxAbs(t[0])));
  }
}

// G^m_n = 8 pi T^m_n with T^m_n = -rho delta^m_0 delta^0_n (dust at rest,
// u = d_t, g_00 = -1), rho = M'/(4 pi R^2 R') = 3 m r^2 / (4 pi R^2 R'):
// the residual, relative to the largest |G|, is round-off.
TEST(LtbPlugin, SolvesEinsteinsEquationsWithItsOwnDust) {
  const Ltb l = Void({0.3, -0.2, 0.1});
  auto m = l.Plugin();
  auto x = testing::RandomPoints(64, {-0.5, -1, -1, -1}, {1, 1, 1, 1});
  torch::NoGradGuard no_grad;
  Geometry geo(m->jet(x, 2));
  const auto& g_mixed = geo.einstein_mixed();
  auto rho = torch::empty({x.size(0)}, kF64);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const double t = x[i][0].item<double>();
    const double r = std::sqrt(std::pow(x[i][1].item<double>() - l.center[0], 2) +
                               std::pow(x[i][2].item<double>() - l.center[1], 2) +
                               std::pow(x[i][3].item<double>() - l.center[2], 2));
    rho[i] = 3 * l.m * r * r / (4 * kPi * std::pow(l.R(t, r), 2) * l.Rp(t, r));
  }
  auto expected = torch::zeros_like(g_mixed);
  expected.select(1, 0).select(1, 0).copy_(-8 * kPi * rho);
  const double scale = MaxAbs(g_mixed);
  const double residual = MaxAbs(g_mixed - expected) / scale;
  EXPECT_LT(residual, 1e-11) << "max |G^m_n - 8 pi T^m_n| / max |G| = " << residual;
  Report("efe_rel_residual", residual);
  // And the density really varies (the test is not of a homogeneous case).
  EXPECT_GT((rho.max() / rho.min()).item<double>(), 1.5);
}

// Physical rays through the ltb metric at targets z [N] along unit
// directions [N,3] (one ray each), float64 at tight tolerances.
SkyDistances Trace(MetricModel& m, const torch::Tensor& directions, const torch::Tensor& z, double rtol = 1e-12,
                   const Event& observer = kDefaultObserver) {
  RayTracerOptions o;
  o.observer = observer;
  o.rtol = rtol;
  o.atol = 1e-14;
  o.z_stop = 0;
  torch::NoGradGuard no_grad;
  return TraceSky(m, directions, torch::arange(z.size(0), torch::kLong), z, kF64, o);
}

torch::Tensor Directions() {
  auto d = torch::tensor({{1.0, 0.0, 0.0}, {-1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, -1.0, 0.0}, {0.0, 0.0, 1.0}, {0.3, -0.5, 0.8}}, kF64);
  return d / d.norm(2, 1, true);
}

// A = 0 is Einstein-de Sitter wherever the centre is: d_L = (2/H0)(1 + z -
// sqrt(1 + z)), H0 = 2 / (3 (1 - tb0)).
TEST(LtbRays, EinsteinDeSitterAtZeroAmplitudeForAnyCentre) {
  Ltb l;
  l.center = {0.4, -0.3, 0.2};
  auto m = l.Plugin();
  const double h0 = 2.0 / (3.0 * (1.0 - l.tb0));
  auto z = torch::tensor({0.05, 0.3, 0.8, 1.5, 2.0, 1.0}, kF64);
  auto got = Trace(*m, Directions(), z);
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  auto want = 2.0 / h0 * (1 + z - torch::sqrt(1 + z)) * 1000.0;
  const double err = MaxAbs(got.luminosity_distance / want - 1);
  EXPECT_LT(err, 1e-10) << "max relative error in d_L: " << err;
  Report("eds_max_rel_error", err);
}

// The observer at the centre: the radial null ODE with z as the variable,
// dr/dz = 1 / ((1+z) Rdot'), dt/dz = -R' / ((1+z) Rdot'), from (r, t) = (0, 1),
// classical RK4 in 4000 steps; D_A = R(t, r), d_L = (1+z)^2 D_A. Every sky
// direction gives the same distance.
double CentralLuminosityDistance(const Ltb& l, double z_target) {
  const int steps = 4000;
  const double h = z_target / steps;
  double r = 0, t = 1, z = 0;
  auto f = [&](double zz, double rr, double tt) {
    const double d = 1.0 / ((1 + zz) * l.Rdotp(tt, rr));
    return std::array<double, 2>{d, -l.Rp(tt, rr) * d};
  };
  for (int i = 0; i < steps; ++i) {
    auto k1 = f(z, r, t);
    auto k2 = f(z + h / 2, r + h / 2 * k1[0], t + h / 2 * k1[1]);
    auto k3 = f(z + h / 2, r + h / 2 * k2[0], t + h / 2 * k2[1]);
    auto k4 = f(z + h, r + h * k3[0], t + h * k3[1]);
    r += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]);
    t += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]);
    z += h;
  }
  return (1 + z_target) * (1 + z_target) * l.R(t, r) * 1000.0;
}

TEST(LtbRays, CentralObserverMatchesTheRadialNullOde) {
  const Ltb l = Void({0, 0, 0});
  auto m = l.Plugin();
  const std::vector<double> zs = {0.05, 0.2, 0.5, 1.0, 1.5};
  double worst = 0, spread = 0;
  for (double z : zs) {
    const double want = CentralLuminosityDistance(l, z);
    auto got = Trace(*m, Directions(), torch::full({6}, z, kF64));
    ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
    worst = std::max(worst, MaxAbs(got.luminosity_distance / want - 1));
    spread = std::max(spread, (got.luminosity_distance.max() / got.luminosity_distance.min() - 1).item<double>());
  }
  EXPECT_LT(worst, 1e-10) << "max relative error in d_L against the radial ODE";
  EXPECT_LT(spread, 1e-8) << "largest spread between directions";
  Report("central_max_rel_error", worst);
  Report("central_direction_spread", spread);
  // The void is not Einstein-de Sitter: the test has something to see (at
  // z = 0.05 the distance is 16 % larger: the older centre expands slower).
  const double h0 = 2.0 / (3.0 * (1.0 - l.tb0));
  const double eds = 2.0 / h0 * (1.05 - std::sqrt(1.05)) * 1000.0;
  EXPECT_GT(CentralLuminosityDistance(l, 0.05) / eds - 1, 0.1);
}

// The observer is the experiment's ([observer] event): one placed at the
// centre of a void whose centre is elsewhere sees the central observer's
// sky (the radial ODE above), and one placed off the centre sees what an
// observer at the origin sees of the same void moved by the opposite offset.
TEST(LtbRays, AnObserverAnywhereSeesTheVoidFromWhereItSits) {
  const std::array<double, 3> c = {0.35, -0.1, 0.2};
  auto moved = Void(c).Plugin();
  auto got = Trace(*moved, Directions(), torch::full({6}, 0.5, kF64), 1e-12, {1.0, c[0], c[1], c[2]});
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  const double central = MaxAbs(got.luminosity_distance / CentralLuminosityDistance(Void(c), 0.5) - 1);
  EXPECT_LT(central, 1e-10) << "observer at the centre: max relative error against the radial ODE";
  Report("observer_at_centre_rel_error", central);
  // Off the centre: observer at -c of a centred void, or at the origin of the moved one.
  auto centred = Void({0, 0, 0}).Plugin();
  auto z = torch::full({6}, 0.3, kF64);
  auto there = Trace(*centred, Directions(), z, 1e-12, {1.0, -c[0], -c[1], -c[2]});
  auto here = Trace(*moved, Directions(), z);
  ASSERT_TRUE(there.reached.all().item<bool>() && here.reached.all().item<bool>());
  const double shifted = MaxAbs(there.luminosity_distance / here.luminosity_distance - 1);
  EXPECT_LT(shifted, 1e-9) << "an off-centre observer against the moved void";
  EXPECT_GT(MaxAbs(here.luminosity_distance / here.luminosity_distance.min() - 1), 1e-2)
      << "the off-centre sky is anisotropic (the test can see a wrong observer)";
}

// Null geodesics by classical Runge-Kutta in the affine parameter, with
// Christoffel symbols from the SDK's geometry of the plugin's jet (checked
// against the textbook metric above), not the tracer's right-hand side:
// states [B,8].
torch::Tensor GeodesicRate(MetricModel& m, const torch::Tensor& y) {
  Geometry geo(m.jet(y.narrow(1, 0, 4), 1));
  auto k = y.narrow(1, 4, 4);
  auto acc = -torch::einsum("nabc,nb,nc->na", {geo.christoffel(), k, k});
  return torch::cat({k, acc}, 1);
}
torch::Tensor Rk4Step(MetricModel& m, const torch::Tensor& y, double h) {
  auto k1 = GeodesicRate(m, y);
  auto k2 = GeodesicRate(m, y + h / 2 * k1);
  auto k3 = GeodesicRate(m, y + h / 2 * k2);
  auto k4 = GeodesicRate(m, y + h * k3);
  return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
}
// 1 + z for comoving observers (g_00 = -1, no shift): k^0 / k^0_obs.
double OnePlusZ(const torch::Tensor& y, double e_obs) { return y[4].item<double>() / e_obs; }

TEST(LtbRays, OffCentreJacobiMapEqualsTheAreaOfANarrowBundle) {
  const Ltb l = Void({0.35, 0.0, 0.0});
  auto m = l.Plugin();
  torch::NoGradGuard no_grad;
  // The observer's frame, written here: u = d_t; e_i from Gram-Schmidt of
  // d_x, d_y, d_z in the spatial metric at the observer.
  auto g0 = l.Textbook(torch::tensor({{1.0, 0.0, 0.0, 0.0}}, kF64))[0];
  auto dot = [&](const torch::Tensor& a, const torch::Tensor& b) { return torch::dot(a, torch::mv(g0, b)); };
  std::vector<torch::Tensor> e;
  for (int i = 1; i <= 3; ++i) {
    auto v = torch::zeros({4}, kF64);
    v[i] = 1;
    for (const auto& ej : e) v = v - dot(ej, v) * ej;
    e.push_back(v / torch::sqrt(dot(v, v)));
  }
  auto triad = torch::stack(e);
  auto n = torch::tensor({0.6, 0.48, 0.64}, kF64);
  n = n / n.norm();
  auto s1 = torch::linalg_cross(torch::tensor({0.0, 0.0, 1.0}, kF64), n);
  s1 = s1 / s1.norm();
  auto s2 = torch::linalg_cross(n, s1);
  const double eps = 1e-4, z_target = 0.4;
  auto dirs = torch::stack({n + eps * s1, n - eps * s1, n + eps * s2, n - eps * s2});
  dirs = dirs / dirs.norm(2, 1, true);
  auto k0 = torch::tensor({1.0, 0.0, 0.0, 0.0}, kF64) - torch::mm(dirs, triad);
  auto y = torch::cat({torch::tensor({1.0, 0.0, 0.0, 0.0}, kF64).expand({4, 4}), k0}, 1);
  // Each neighbour to its own z = z_target: steps of h, then the last step
  // cut by the secant method on 1 + z.
  const double h = -2e-3;
  std::vector<torch::Tensor> at_target;
  for (int64_t r = 0; r < 4; ++r) {
    auto s = y.narrow(0, r, 1);
    for (int it = 0; it < 100000 && OnePlusZ(Rk4Step(*m, s, h)[0], 1.0) < 1 + z_target; ++it) s = Rk4Step(*m, s, h);
    double a = 0, b = h;
    double fa = OnePlusZ(s[0], 1.0) - 1 - z_target, fb = OnePlusZ(Rk4Step(*m, s, h)[0], 1.0) - 1 - z_target;
    for (int it = 0; it < 40 && std::abs(b - a) > 1e-15; ++it) {
      const double c = b - fb * (b - a) / (fb - fa);
      a = b;
      fa = fb;
      b = c;
      fb = OnePlusZ(Rk4Step(*m, s, b)[0], 1.0) - 1 - z_target;
    }
    at_target.push_back(Rk4Step(*m, s, b)[0]);
  }
  // The central ray through the tracer (with its Jacobi map).
  auto traced = Trace(*m, n.view({1, 3}), torch::tensor({z_target}, kF64), 1e-12);
  ASSERT_TRUE(traced.reached.all().item<bool>()) << traced.stop.Summary();
  auto xs = traced.source[0].narrow(0, 0, 4), ks = traced.source[0].narrow(0, 4, 4);
  auto gs = l.Textbook(xs.view({1, 4}))[0];
  auto gdot = [&](const torch::Tensor& a, const torch::Tensor& b) { return torch::dot(a, torch::mv(gs, b)); };
  auto u = torch::tensor({1.0, 0.0, 0.0, 0.0}, kF64);
  auto d = ks / (-gdot(u, ks)) - u;
  auto screen = [&](const torch::Tensor& v) { return v + gdot(u, v) * u - gdot(d, v) * d; };
  auto a = screen((at_target[0] - at_target[1]).narrow(0, 0, 4) / (2 * eps));
  auto b = screen((at_target[2] - at_target[3]).narrow(0, 0, 4) / (2 * eps));
  const double area = (gdot(a, a) * gdot(b, b) - gdot(a, b).square()).item<double>();
  const double bundle = std::pow(area, 0.25) * 1000.0;
  const double jacobi = traced.angular_distance[0].item<double>();
  const double err = std::abs(bundle / jacobi - 1);
  EXPECT_LT(err, 1e-7) << "bundle " << bundle << " Mpc, Jacobi " << jacobi << " Mpc";
  Report("bundle_rel_error", err);
}

// Off the centre the sky is anisotropic: towards the void's centre the light
// crosses the slower-expanding region, away from it not.
TEST(LtbRays, OffCentreDistancesDependOnDirection) {
  const Ltb l = Void({0.35, 0.0, 0.0});
  auto m = l.Plugin();
  auto dirs = torch::tensor({{1.0, 0.0, 0.0}, {-1.0, 0.0, 0.0}}, kF64);
  for (double z : {0.1, 0.3, 0.6}) {
    auto got = Trace(*m, dirs, torch::full({2}, z, kF64), 1e-10);
    ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
    const double toward = got.luminosity_distance[0].item<double>(), away = got.luminosity_distance[1].item<double>();
    EXPECT_GT(std::abs(toward / away - 1), 1e-2) << "z = " << z << ": " << toward << " vs " << away << " Mpc";
  }
}

// Before the bang or past a shell crossing the metric is not defined: in_domain
// says so, and the jet there is not finite (never a silent number).
TEST(LtbPlugin, SaysWhereItIsNotDefined) {
  const Ltb l = Void({0, 0, 0});
  auto m = l.Plugin();
  // At the centre the bang is at tb0 + A = -2.455; far away at tb0 = -1.855.
  auto x = torch::tensor({{-2.0, 0.0, 0.0, 0.0}, {-2.0, 0.9, 0.0, 0.0}, {-2.6, 0.0, 0.0, 0.0}, {0.5, 0.2, 0.0, 0.0}}, kF64);
  auto inside = m->in_domain(x);
  EXPECT_TRUE(inside[0].item<bool>());
  EXPECT_FALSE(inside[1].item<bool>());
  EXPECT_FALSE(inside[2].item<bool>());
  EXPECT_TRUE(inside[3].item<bool>());
  EXPECT_FALSE(torch::isfinite(m->jet(x.narrow(0, 2, 1), 0).g).all().item<bool>());
  // Whether the observer's event lies inside is the engine's check
  // (observer_test.cc): the plugin itself is made with a centre that bangs
  // after t = 1, and says the default observer there is outside.
  auto late = testing::BuiltInPlugins().Make<MetricModel>("ltb", {{"tb0", 0.5}, {"bang_amplitude", 0.6}});
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_FALSE((*late)->in_domain(EventPoint(kDefaultObserver, kF64))[0].item<bool>());
  EXPECT_TRUE((*late)->in_domain(EventPoint({1.2, 0.0, 0.0, 0.0}, kF64))[0].item<bool>());
}

}  // namespace
}  // namespace lumpy
