// The observer as a property of the experiment ([observer] event): rays,
// the observer's geometry, the dataset terms and their Hubble diagrams all
// start where it sits, against closed forms of flat FLRW universes, float64:
//   - at t = 1 anywhere in space (homogeneity), both ray modes give the
//     closed-form d_L (1e-6), and the rays start at the observer's position;
//   - at another time t_o in Einstein-de Sitter the sky is the closed form
//     with that time's Hubble rate, H(t_o) = 2 / (3 (t_o - t_b)): the
//     physical rays' d_L, the step context's H_mean at the observer, and
//     supernova_chi2's value and Hubble diagram;
//   - Einstein-de Sitter solves the dust equations for an observer at t_o
//     when efe_residual puts rho0 at the observer (rho0_at = "observer"), in
//     training's context and in the probe's table; the reference's
//     normalisation (rho0 where sqrt(det gamma) = 1) does not there;
//   - bao_chi2 from the observer at t_o: D_M and D_H of the closed form;
//   - an event where the metric is not defined is refused by the engine,
//     located at [observer] event.
// The off-centre LTB observer is in ltb_test.cc.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "analytic_metrics.h"
#include "built_in_plugins.h"
#include "dataset_context.h"
#include "cli/probe.h"
#include "config/experiment.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/report.h"
#include "lumpy/supernovae.h"
#include "lumpy/testing/conformance.h"
#include "physics/point_set_context.h"
#include "train/sampling.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;
using testing::MaxAbs;

constexpr double kC = 299792.458;  // km/s
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Einstein-de Sitter with H0 = 70 km/s/Mpc at t = 1: t_b = 1 - 2 / (3 H0).
constexpr double kH0 = 70.0;
double BangTime() { return 1.0 - 2.0 / (3.0 * kH0 / (kC / 1000.0)); }
// H (km/s/Mpc) of the comoving observer at time t.
double HubbleAt(double t) { return 2.0 / (3.0 * (t - BangTime())) * kC / 1000.0; }
// d_L (Mpc) seen by an observer whose Hubble rate is h: (2c/h)(1 + z - sqrt(1 + z)).
torch::Tensor EdsDistance(const torch::Tensor& z, double h) { return 2.0 * kC / h * (1 + z - torch::sqrt(1 + z)); }

std::shared_ptr<MetricModel> Eds() {
  return MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}, {"h0", kH0}});
}

RayTracerOptions Tight(const Event& observer) {
  RayTracerOptions o;
  o.rtol = 1e-12;
  o.atol = 1e-14;
  o.z_stop = 0;
  o.observer = observer;
  return o;
}

// Today anywhere: the same distances as from the origin, read along rays
// that start at the observer (the reference ray along +x keeps its y and z).
TEST(Observer, TodayAnywhereSeesTheSameClosedFormDistances) {
  auto m = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("lcdm")}, {"h0", 70.0}, {"omega_m", 0.3}});
  const Event at = {1.0, 0.3, -0.2, 0.45};
  auto z = torch::tensor({0.02, 0.3, 0.9, 1.6}, kF64);
  std::vector<double> want;
  for (int64_t i = 0; i < z.size(0); ++i) want.push_back(testing::FlatLcdmLuminosityDistance(z[i].item<double>(), 70, 0.3));
  auto want_t = torch::tensor(want, kF64);
  torch::NoGradGuard no_grad;
  auto ref = TraceReference(*m, z, kF64, Tight(at));
  ASSERT_TRUE(ref.reached.all().item<bool>()) << ref.stop.Summary();
  EXPECT_LT(MaxAbs(ref.luminosity_distance / want_t - 1), 1e-6);
  EXPECT_LT(MaxAbs(ref.source.select(1, 2) - at[2]), 1e-12);
  EXPECT_LT(MaxAbs(ref.source.select(1, 3) - at[3]), 1e-12);
  // k^x > 0 at the observer, traced back: the source lies at x < x_o.
  EXPECT_LT(ref.source.select(1, 1).max().item<double>(), at[1]);
  auto dirs = torch::tensor({{0.0, 0.6, 0.8}, {-1.0, 0.0, 0.0}}, kF64);
  auto sky = TraceSky(*m, dirs, torch::arange(2).repeat_interleave(z.size(0)), z.repeat({2}), kF64, Tight(at));
  ASSERT_TRUE(sky.reached.all().item<bool>()) << sky.stop.Summary();
  EXPECT_LT(MaxAbs(sky.luminosity_distance / want_t.repeat({2}) - 1), 1e-6);
  // The -x ray: y and z stay the observer's, x falls below it.
  auto back = sky.source.narrow(0, z.size(0), z.size(0));
  EXPECT_LT(MaxAbs(back.select(1, 2) - at[2]), 1e-12);
  EXPECT_LT(back.select(1, 1).max().item<double>(), at[1]);
}

// Earlier in Einstein-de Sitter the universe expands faster: the physical
// rays and the observer's geometry see H(t_o), not H0.
TEST(Observer, AnEarlierObserverSeesThatTimesHubbleRate) {
  auto m = Eds();
  const Event at = {0.2, 0.1, 0.0, -0.3};
  const double h = HubbleAt(at[0]);
  ASSERT_GT(h, 1.2 * kH0);  // the test can tell the two apart
  auto z = torch::tensor({0.05, 0.5, 1.2, 2.0}, kF64);
  torch::NoGradGuard no_grad;
  auto sky = TraceSky(*m, torch::tensor({{0.0, 0.0, 1.0}, {0.48, -0.6, 0.64}}, kF64),
                      torch::arange(2).repeat_interleave(z.size(0)), z.repeat({2}), kF64, Tight(at));
  ASSERT_TRUE(sky.reached.all().item<bool>()) << sky.stop.Summary();
  EXPECT_LT(MaxAbs(sky.luminosity_distance / EdsDistance(z, h).repeat({2}) - 1), 1e-6);

  PointSetContext ctx(*m, torch::zeros({0, 4}, kF64), nullptr, 0, {}, at);
  EXPECT_EQ(ctx.observer_event(), at);
  const double h_mean = ctx.observer(1).hubble_mean().item<double>() * kC / 1000.0;
  EXPECT_NEAR(h_mean / h, 1.0, 1e-10);
  // A domain that draws from the rays draws the observer's event before any ray.
  DomainSpec d;
  d.ray_points = 3;
  auto p = SamplePoints(d, kF64, {}, at);
  EXPECT_EQ(MaxAbs(p - EventPoint(at, kF64)), 0.0);
}

// supernova_chi2 (physical rays, 6 direction bins) traces from the
// context's observer, and its Hubble diagram from the one it is given: the
// mean squared pull and every mu_model are those of the closed form at t_o.
TEST(Observer, SupernovaTermAndItsHubbleDiagramTraceFromTheObserver) {
  auto sn = MakeBuiltIn<LossTerm>("supernova_chi2", {{"rtol", 1e-12},
                                                     {"atol", 1e-14},
                                                     {"mode", std::string("physical")},
                                                     {"bins", int64_t{6}}});
  ASSERT_TRUE(sn);
  auto path = ResolveDataFile("Pantheon+SH0ES.dat");
  ASSERT_TRUE(path.ok()) << path.status();
  auto cat = LoadSupernovae(*path, {});
  ASSERT_TRUE(cat.ok()) << cat.status();
  auto m = Eds();
  const Event at = {0.4, -0.2, 0.3, 0.0};
  auto want_mu = 5 * torch::log10(EdsDistance(cat->z, HubbleAt(at[0]))) + 25;
  torch::NoGradGuard no_grad;
  testing::DatasetContext ctx;
  ctx.m = m.get();
  ctx.at = at;
  const double v = sn->evaluate(ctx).value.item<double>();
  const double want = ((want_mu - cat->mu) / cat->sigma).square().mean().item<double>();
  EXPECT_NEAR(v / want, 1.0, 1e-6);
  HubbleDiagramSource* source = HubbleDiagramOf(*sn);
  ASSERT_NE(source, nullptr);
  auto diagram = source->hubble_diagram(*m, kF64, at);
  ASSERT_TRUE(diagram.ok()) << diagram.status();
  ASSERT_EQ(static_cast<int64_t>(diagram->objects.size()), cat->size());
  double worst = 0;
  for (size_t i = 0; i < diagram->objects.size(); ++i) {
    ASSERT_TRUE(diagram->objects[i].reached) << diagram->objects[i].name;
    worst = std::max(worst, std::abs(diagram->objects[i].mu_model - want_mu[i].item<double>()));
  }
  EXPECT_LT(worst, 1e-6) << "largest |mu_model - closed form| (mag)";
}

// Einstein-de Sitter is dust with Omega_m = 1 seen from any time, if the
// density is rho0 at the observer: the residual vanishes to rounding (|r| <=
// 1e-10) in the step context and in the probe's efe_residual column; with
// rho0 where sqrt(det gamma) = 1 (the reference's), seen at t_o = 0.4 it is
// off by a(t_o)^-3.
TEST(Observer, DustIsNormalisedAtTheObserverWhenAsked) {
  auto m = Eds();
  const Event at = {0.4, 0.2, -0.1, 0.3};
  auto x = testing::UniformPoints(64, -1.0, 1.0, 1.0);
  auto at_observer = MakeBuiltIn<LossTerm>("efe_residual", {{"omega_m", 1.0}, {"rho0_at", std::string("observer")}});
  auto unit_volume = MakeBuiltIn<LossTerm>("efe_residual", {{"omega_m", 1.0}});
  PointSetContext ctx(*m, x, nullptr, 0, {}, at);
  EXPECT_LT(MaxAbs(at_observer->evaluate(ctx).per_point), 1e-20);
  EXPECT_GT(unit_volume->evaluate(ctx).per_point.min().item<double>(), 1e-6);
  auto table = ProbeTable(*m, at_observer.get(), at, x);  // column 15: efe_residual
  EXPECT_LT(MaxAbs(table.select(1, 15)), 1e-20);
}

// bao_chi2 (physical rays, 6 bins) from an observer at t_o = 0.5 in
// Einstein-de Sitter: D_M = d_L / (1+z), D_H = c / (H(t_o) (1+z)^1.5).
TEST(Observer, BaoTermTracesFromTheObserver) {
  auto bao = MakeBuiltIn<LossTerm>(
      "bao_chi2", {{"rtol", 1e-12}, {"atol", 1e-14}, {"mode", std::string("physical")}, {"bins", int64_t{6}}});
  ASSERT_TRUE(bao);
  auto path = ResolveDataFile("bao_dr12.csv");
  ASSERT_TRUE(path.ok()) << path.status();
  auto table = LoadBao(*path);
  ASSERT_TRUE(table.ok()) << table.status();
  const Event at = {0.5, -0.3, 0.1, 0.0};
  const double h = HubbleAt(at[0]), rd = 147.09;
  double want = 0;
  for (int64_t i = 0; i < table->size(); ++i) {
    const double z = table->z[i].item<double>();
    const double dm = 2.0 * kC / h * (1 + z - std::sqrt(1 + z)) / (1 + z) / rd;
    const double dh = kC / h / std::pow(1 + z, 1.5) / rd;
    const double a = (dm - table->dm[i].item<double>()) / table->dm_err[i].item<double>();
    const double b = (dh - table->dh[i].item<double>()) / table->dh_err[i].item<double>();
    const double r = table->corr[i].item<double>();
    want += (a * a + b * b - 2 * r * a * b) / (1 - r * r);
  }
  auto m = Eds();
  torch::NoGradGuard no_grad;
  testing::DatasetContext ctx;
  ctx.m = m.get();
  ctx.at = at;
  EXPECT_NEAR(bao->evaluate(ctx).value.item<double>() / want, 1.0, 1e-6);  // reduction "total"
}

// An observer before the metric's big bang: refused when the experiment is
// built, at the key that put it there.
TEST(Observer, AnEventOutsideTheMetricIsRefusedAtTheKey) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("lumpy_observer_test_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file) << "[model]\nplugin = \"flrw\"\nscale_factor = \"eds\"\n"
                         "[observer]\nevent = [-2.5, 0.0, 0.0, 0.0]\n"
                         "[domains.d.strata.s]\ncount = 2\nt = [0.0, 1.0]\n"
                         "[loss.l]\nplugin = \"efe_residual\"\ndomain = \"d\"\n";
  Registry registry;
  PluginLoader loader(registry);
  ASSERT_TRUE(loader.LoadDefaults().ok());
  auto exp = LoadExperiment(file, {}, loader, registry);
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(ObserverEvent(*exp), (Event{-2.5, 0.0, 0.0, 0.0}));
  auto c = Instantiate(*exp);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(c.status().message()).find(file.string() + ":5:9: observer.event: the observer's event "
                                                                    "(-2.5, 0, 0, 0) lies outside"),
            std::string::npos)
      << c.status();
  // Moved after the bang, the same file builds, its observer where it says.
  auto later = LoadExperiment(file, {"observer.event=[0.5, 0.0, 0.0, 0.0]"}, loader, registry);
  ASSERT_TRUE(later.ok()) << later.status();
  auto built = Instantiate(*later);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->observer, (Event{0.5, 0.0, 0.0, 0.0}));
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace lumpy
