// The ray tracer in both modes against the closed-form luminosity distances
// of flat FLRW universes (docs/physics.md, "Light rays and observables"), z from 0.01 to 2.3:
// 1e-6 relative in float64, 1e-4 in float32, and D_H against c/H(z); the
// Jacobi map's D_A against the area of a narrow bundle of neighbouring rays in
// an anisotropic (Kasner) spacetime; gradients with respect to h0 and omega_m
// against central finite differences (1e-6 relative); rays that meet a
// singularity stop, counted, with nothing non-finite in the outputs.

#include "lumpy/ray_tracer.h"
#include "lumpy/sky_rays.h"
#include "lumpy/supernovae.h"

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"
#include "dataset_context.h"
#include "physics/geodesic_rhs.h"
#include "physics/ray_error.h"
#include "physics/ray_observables.h"
#include "physics/ray_read_out.h"
#include "physics/ray_states.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;
using testing::MaxAbs;
using testing::TrainableLcdm;

constexpr double kC = 299792.458;

torch::Tensor Redshifts() { return torch::linspace(0.01, 2.3, 47, torch::kFloat64); }

// testing::FlatLcdmLuminosityDistance at every redshift of z.
torch::Tensor LcdmDistance(const torch::Tensor& z, double h0, double om) {
  std::vector<double> out;
  for (int64_t i = 0; i < z.size(0); ++i) {
    out.push_back(testing::FlatLcdmLuminosityDistance(z[i].item<double>(), h0, om));
  }
  return torch::tensor(out, torch::kFloat64);
}

struct Case {
  const char* model;
  double h0, om;
};

// d_L (Mpc) and c/H (Mpc) of a case at every redshift of z.
std::pair<torch::Tensor, torch::Tensor> ClosedForms(const Case& c, const torch::Tensor& z) {
  const double dh = kC / c.h0;  // Hubble distance today, Mpc
  const std::string model = c.model;
  if (model == "eds") return {2 * dh * (1 + z - torch::sqrt(1 + z)), dh * torch::pow(1 + z, -1.5)};
  if (model == "de_sitter") return {dh * z * (1 + z), dh * torch::ones_like(z)};
  return {LcdmDistance(z, c.h0, c.om), dh / torch::sqrt(c.om * torch::pow(1 + z, 3) + 1 - c.om)};
}

std::shared_ptr<MetricModel> MakeFlrw(const Case& c) {
  return MakeBuiltIn<MetricModel>(
      "flrw", {{"scale_factor", std::string(c.model)}, {"h0", c.h0}, {"omega_m", c.om}});
}

class ReferenceRay : public ::testing::TestWithParam<std::tuple<Case, torch::Dtype>> {};

TEST_P(ReferenceRay, MatchesTheClosedFormDistances) {
  const auto [c, dtype] = GetParam();
  auto m = MakeFlrw(c);
  auto z = Redshifts();
  auto [want, want_dh] = ClosedForms(c, z);
  torch::NoGradGuard no_grad;
  RayTracerOptions o;
  o.hubble_distance = true;
  auto got = TraceReference(*m, z.to(dtype), torch::TensorOptions().dtype(dtype), o);
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  const double tol = dtype == torch::kFloat64 ? 1e-6 : 1e-4;
  EXPECT_LT(MaxAbs(got.luminosity_distance.to(torch::kFloat64) / want - 1), tol)
      << c.model << ": " << got.stop.accepted << " steps, stopped by " << got.stop.Summary();
  EXPECT_LT(MaxAbs(got.hubble_distance.to(torch::kFloat64) / want_dh - 1), tol);
  EXPECT_GT(got.z_max.item<double>(), 2.3);
  EXPECT_EQ(got.stop.Summary(), "redshift: 1");
}

// The fused right-hand side (one node, hand-written adjoint) against the
// tensor form under autograd: values and the gradients with respect to the
// state and every jet component, on random Lorentzian metrics and random
// (unsymmetrised) derivatives. float64, 1e-12.
TEST(GeodesicRhs, FusedNodeMatchesTheTensorForm) {
  torch::manual_seed(7);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  for (int64_t dim : {8, 24}) {
    const int64_t r = 5;
    auto a = 0.2 * torch::randn({r, 4, 4}, f64);
    auto g0 = (torch::diag(torch::tensor({-1.0, 1.0, 1.0, 1.0}, f64)) + a + a.transpose(1, 2));
    auto dg0 = torch::randn({r, 4, 4, 4}, f64);
    auto d2g0 = torch::randn({r, 4, 4, 4, 4}, f64);
    auto y0 = torch::randn({r, dim}, f64);
    auto w = torch::randn({r, dim}, f64);
    std::vector<torch::Tensor> grads[2], values;
    for (int fused = 0; fused < 2; ++fused) {
      auto y = y0.clone().requires_grad_(true), g = g0.clone().requires_grad_(true);
      auto dg = dg0.clone().requires_grad_(true), d2g = d2g0.clone().requires_grad_(true);
      Jet jet{g, dg, d2g, 2};
      auto out = fused ? GeodesicRhsFused(y, jet) : GeodesicRhsOps(y, jet);
      values.push_back(out.detach());
      (out * w).sum().backward();
      grads[fused] = {y.grad(), g.grad(), dg.grad(),
                      dim == 24 ? d2g.grad() : torch::zeros_like(d2g0)};
    }
    SCOPED_TRACE("state size " + std::to_string(dim));
    EXPECT_LT(MaxAbs(values[0] - values[1]), 1e-12);
    const char* names[] = {"y", "g", "dg", "d2g"};
    for (int i = 0; i < 4; ++i) {
      EXPECT_LT(MaxAbs(grads[0][i] - grads[1][i]), 1e-12 * (1 + MaxAbs(grads[0][i]))) << names[i];
    }
    EXPECT_GT(MaxAbs(grads[1][1]), 0.0);
  }
}

// The step's error is measured per vector (t; spatial x; k^0; spatial k;
// each Jacobi vector and its derivative whole), relative to the vector's
// size: a component that stays near zero (xi^0 here, 1e-12) is held to the
// accuracy of its vector, rtol |xi|, not to atol alone. Measured per
// component, the same error would count 1e4 times larger and force steps
// (1e4)^(1/5) ~ 6 times shorter. Both paths (loops, tensor operations)
// give the same norms; a non-finite stage derivative gives an infinite norm.
TEST(RayErrorNorm, IsRelativeToEachVectorsSize) {
  EXPECT_EQ(ErrorVector(0), (std::pair<int64_t, int64_t>{0, 1}));
  EXPECT_EQ(ErrorVector(2), (std::pair<int64_t, int64_t>{1, 4}));
  EXPECT_EQ(ErrorVector(4), (std::pair<int64_t, int64_t>{4, 5}));
  EXPECT_EQ(ErrorVector(7), (std::pair<int64_t, int64_t>{5, 8}));
  EXPECT_EQ(ErrorVector(8), (std::pair<int64_t, int64_t>{8, 12}));
  EXPECT_EQ(ErrorVector(23), (std::pair<int64_t, int64_t>{20, 24}));
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto y = torch::zeros({2, 24}, f64);
  y.index_put_({torch::indexing::Slice(), 0}, 1.0);    // t
  y.index_put_({torch::indexing::Slice(), 4}, 1.0);    // k^0
  y.index_put_({torch::indexing::Slice(), 5}, -1.0);   // k^1
  y.index_put_({torch::indexing::Slice(), 8}, 1e-12);  // xi_1^0
  y.index_put_({torch::indexing::Slice(), 9}, 2.0);    // xi_1^1
  auto k = torch::zeros({2, 24}, f64);
  k.index_put_({0, 8}, 1e-6);  // the error lands on xi_1^0
  k.index_put_({1, 3}, 1e-6);  // on the spatial position z, where x = 0
  const double rtol = 1e-6, atol = 1e-8, h = 0.5;
  for (bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "fused" : "tensor");
    auto norms = ErrorNorms(y, y, {k}, {1.0}, h, rtol, atol, fused);
    EXPECT_NEAR(norms[0], 0.5e-6 / (atol + rtol * 2.0), 1e-9);
    EXPECT_NEAR(norms[1], 0.5e-6 / atol, 1e-9);  // a zero vector: atol alone
    auto bad = k.clone();
    bad.index_put_({1, 20}, NAN);
    norms = ErrorNorms(y, y, {k, bad}, {1.0, 0.0}, h, rtol, atol, fused);
    EXPECT_TRUE(std::isfinite(norms[0]));
    EXPECT_TRUE(std::isinf(norms[1]));
  }
}

// The automatic first step is T rtol^(1/5), T = |k| / |dk/dl| the time over
// which a ray's momentum changes (the shortest over moving rays, frozen rays
// with f = 0 left out, at most the span). On a de Sitter ray it replaces the
// fixed 1e-3 start (which takes several steps to grow to the step the
// tolerance allows) and gives the same distances in fewer steps.
TEST(RayInitialStep, IsTheMomentumTimeScaleTimesRtolToTheFifth) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto y = torch::zeros({3, 8}, f64), f = torch::zeros({3, 8}, f64);
  y.index_put_({torch::indexing::Slice(), 4}, 2.0);
  y.index_put_({torch::indexing::Slice(), 5}, -2.0);
  f.index_put_({0, 4}, -0.5);  // T = 4
  f.index_put_({1, 6}, 0.25);  // T = 8
  // ray 2 is frozen (f = 0)
  EXPECT_NEAR(InitialStep(y, f, 1e-5, 10.0), 4.0 * 0.1, 1e-12);
  EXPECT_NEAR(InitialStep(y, f, 1e-5, 2.0), 2.0 * 0.1, 1e-12);
  EXPECT_NEAR(InitialStep(y, torch::zeros_like(f), 1e-5, 10.0), 1.0, 1e-12);

  auto m = MakeFlrw({"de_sitter", 70, 0.3});
  auto z = Redshifts();
  torch::NoGradGuard no_grad;
  RayTracerOptions fixed;
  fixed.first_step = 1e-3;
  auto a = TraceReference(*m, z, f64, RayTracerOptions{});
  auto b = TraceReference(*m, z, f64, fixed);
  EXPECT_LT(a.stop.accepted + a.stop.rejected, b.stop.accepted + b.stop.rejected);
  EXPECT_LT(MaxAbs(a.luminosity_distance / b.luminosity_distance - 1), 1e-8);
}

// A metric that records how many points each jet of order >= 1 (a ray
// stage) is asked for, how many of them carry a graph, and how many of
// those a gradient reaches in the backward pass.
class CountingMetric : public MetricModel {
 public:
  explicit CountingMetric(std::shared_ptr<MetricModel> inner) : inner_(std::move(inner)) {}
  Jet jet(const torch::Tensor& x, int order) override {
    Jet jet = inner_->jet(x, order);
    if (order < 1) return jet;
    points.push_back(x.size(0));
    if (jet.dg.requires_grad()) {  // count it, and whether a gradient reaches it
      ++with_graph;
      jet.dg.register_hook([this](const torch::Tensor& g) {
        ++backward;
        return g;
      });
    }
    return jet;
  }
  std::vector<PhysicalParameter> physical_parameters() override { return inner_->physical_parameters(); }
  std::vector<int64_t> points;         // the points of each jet of order >= 1
  int64_t with_graph = 0, backward = 0;  // of those, evaluated with a graph; reached by a gradient

 private:
  std::shared_ptr<MetricModel> inner_;
};

// Rays that have stopped leave the batch: with targets at z = 0.1, 0.5 and 1
// and each ray stopping past its own target (z_stop = 0), the jets see 3,
// then 2, then 1 point; the distances still match flat LCDM's closed form
// (1e-6 relative).
TEST(RayBatch, StoppedRaysLeaveTheJetsBatch) {
  CountingMetric m(MakeFlrw({"lcdm", 70, 0.3}));
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto directions = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 0.6, 0.8}, {-0.5, -0.5, 0.70710678}});
  auto z = torch::tensor({0.1, 0.5, 1.0}, f64);
  RayTracerOptions o;
  o.z_stop = 0;
  torch::NoGradGuard no_grad;
  auto got = TraceSky(m, directions, torch::arange(3, torch::kLong), z, f64, o);
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  EXPECT_LT(MaxAbs(got.luminosity_distance / LcdmDistance(z, 70, 0.3) - 1), 1e-6);
  ASSERT_FALSE(m.points.empty());
  EXPECT_EQ(m.points.front(), 3);
  EXPECT_EQ(m.points.back(), 1);
  EXPECT_TRUE(std::is_sorted(m.points.rbegin(), m.points.rend()));
  EXPECT_NE(std::find(m.points.begin(), m.points.end(), 2), m.points.end());
}

// The backward pass stops at the last state the read-out uses: with targets
// at z <= 0.1 and the reference ray running on to z = 2.5, the steps past the
// targets' crossing are left out of the distances' graph (before, stacking
// every saved state put all of them in it, and each of their jets took a
// zero gradient). The gradient is unchanged: it matches the one computed with
// the ray stopping just past its targets.
TEST(RayReadOut, BackwardSkipsTheStepsPastTheLastTarget) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto z = torch::tensor({0.05, 0.1}, f64);
  auto gradient = [&](double z_stop, int64_t* forward, int64_t* backward) {
    CountingMetric m(TrainableLcdm(70, 0.3));
    RayTracerOptions o;
    o.z_stop = z_stop;
    auto d = TraceReference(m, z, f64, o);
    EXPECT_TRUE(d.reached.all().item<bool>());
    auto p = m.physical_parameters();
    auto g = torch::autograd::grad({d.luminosity_distance.sum()}, {p[0].value})[0];
    *forward = m.with_graph;
    *backward = m.backward;
    return g.item<double>();
  };
  int64_t forward = 0, backward = 0, forward_short = 0, backward_short = 0;
  const double g_long = gradient(2.5, &forward, &backward);
  const double g_short = gradient(0.0, &forward_short, &backward_short);
  EXPECT_GT(forward, 3 * forward_short);  // the long ray takes many more steps
  EXPECT_LE(backward, backward_short);     // but its backward pass does not
  EXPECT_NEAR(g_long / g_short, 1.0, 1e-6);
}

// jnp.interp's rule by hand: clamped at both ends, the interval found by
// binary search, and a zero-width interval (a plateau of repeated samples)
// read as its left value with a finite gradient.
TEST(ReferenceReadOut, InterpolatesAsJaxDoes) {
  auto xp = torch::tensor({0.0, 0.1, 0.3, 0.3, 0.6}, torch::kFloat64).requires_grad_(true);
  auto fp = torch::tensor({1.0, 2.0, 4.0, 5.0, 8.0}, torch::kFloat64).requires_grad_(true);
  auto x = torch::tensor({-0.5, 0.0, 0.05, 0.3, 0.45, 0.6, 0.9}, torch::kFloat64);
  auto f = InterpLikeJax(x, xp, fp);
  // -0.5: below, fp[0]; 0: the first interval at its start; 0.05: halfway;
  // 0.3: upper_bound lands past the repeated 0.3 (i = 4): 5 + 0 * 3; 0.45:
  // (0.3, 0.6) halfway, 6.5; 0.6: fp[4]; 0.9: above, fp[4].
  auto want = torch::tensor({1.0, 1.0, 1.5, 5.0, 6.5, 8.0, 8.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(f, want, 0, 1e-15)) << f;
  auto grads = torch::autograd::grad({f.sum()}, {xp, fp}, {}, /*retain_graph=*/true);
  for (const auto& g : grads) EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << g;
  // Inside (0.3, 0.6) at 0.45: d f / d xp[3] = df (x - xp[4]) / dx^2 = 3 (-0.15) / 0.09.
  auto one = torch::autograd::grad({f[4]}, {xp})[0];
  EXPECT_NEAR(one[3].item<double>(), 3 * -0.15 / 0.09, 1e-12);
  // Unsorted samples (a ray whose z turns back): JAX's fixed-length binary
  // search over [0, 5) with x = 1.9 probes 2, 3, 4 and ends at i = 3, the
  // interval (0.2, 2.4): 2 + (1.7 / 2.2) (3 - 2). (std::upper_bound's probes
  // give i = 4, the interval (2.4, 1.9), and 4.)
  auto unsorted = InterpLikeJax(torch::tensor({1.9}, torch::kFloat64),
                                torch::tensor({1.2, 2.0, 0.2, 2.4, 1.9}, torch::kFloat64),
                                torch::tensor({0.0, 1.0, 2.0, 3.0, 4.0}, torch::kFloat64));
  EXPECT_NEAR(unsorted.item<double>(), 2.0 + 1.7 / 2.2, 1e-12);
}

// The whole rule on hand-made samples: two of five samples past the ray's
// end take the largest z and d found; a target beyond z_max gets
// 10 (z - z_max) added to its distance.
TEST(ReferenceReadOut, PlateausPastTheEndAndAddsTheShortfall) {
  auto z = torch::tensor({0.0, 0.2, 0.5}, torch::kFloat64);
  auto d = torch::tensor({0.0, 0.3, 0.9}, torch::kFloat64);
  auto target = torch::tensor({0.1, 0.5, 0.7}, torch::kFloat64);
  auto got = ReferenceDistances(z, d, 5, target);
  // 0.1 -> 0.15; 0.5 -> the plateau value 0.9 (x == xp[4], upper_bound past
  // the end, clipped to the last interval of zero width: fp[3] = 0.9);
  // 0.7 -> clamped 0.9 plus 10 x 0.2.
  auto want = torch::tensor({0.15, 0.9, 0.9 + 2.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(got, want, 0, 1e-14)) << got;
}

// The reference's read-out (d_L linear in z between samples evenly spaced in
// the affine parameter): with its 50 samples it differs from the exact
// crossing by the interpolation error (a few per cent over z 0.01-2.3: only
// about ten samples fall below z = 2.5); with more samples it converges to
// the exact distances at the linear interpolant's rate, error ~ spacing^2
// (500 -> 5000 samples: 100x smaller, within a factor 2).
TEST(ReferenceReadOut, ConvergesToTheExactCrossing) {
  auto m = MakeFlrw(Case{"lcdm", 70, 0.3});
  auto z = Redshifts();
  torch::NoGradGuard no_grad;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto exact = TraceReference(*m, z, f64).luminosity_distance;
  auto error = [&](int64_t points) {
    // The reference's distance carries sqrt(r^2 + 1e-9): 3e-5 at the observer.
    return MaxAbs(TraceReference(*m, z, f64, {}, ReferenceReadOut{points}).luminosity_distance / exact - 1);
  };
  const double e50 = error(50), e500 = error(500), e5000 = error(5000);
  EXPECT_LT(e50, 5e-2);
  EXPECT_GT(e50, 1e-3);
  EXPECT_LT(e5000, 1e-5);
  EXPECT_GT(e500 / e5000, 50);
  EXPECT_LT(e500 / e5000, 200);
}

// Physical mode: three sky directions, every redshift read off each; FLRW is
// isotropic, so each must give the closed forms.
class PhysicalRays : public ReferenceRay {};

TEST_P(PhysicalRays, MatchTheClosedFormDistances) {
  const auto [c, dtype] = GetParam();
  auto m = MakeFlrw(c);
  auto z = Redshifts();
  auto [want, want_dh] = ClosedForms(c, z);
  auto directions = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 0.6, 0.8}, {-0.5, -0.5, 0.70710678}});
  const int64_t n = z.size(0);
  auto ray_of = torch::arange(3, torch::kLong).repeat_interleave(n);
  torch::NoGradGuard no_grad;
  RayTracerOptions o;
  o.hubble_distance = true;
  const auto options = torch::TensorOptions().dtype(dtype);
  auto got = TraceSky(*m, directions, ray_of, z.repeat({3}).to(dtype), options, o);
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  const double tol = dtype == torch::kFloat64 ? 1e-6 : 1e-4;
  EXPECT_LT(MaxAbs(got.luminosity_distance.to(torch::kFloat64) / want.repeat({3}) - 1), tol)
      << c.model << ": " << got.stop.accepted << " steps, " << got.stop.Summary();
  EXPECT_LT(MaxAbs(got.angular_distance.to(torch::kFloat64) * (1 + z.repeat({3})).square() /
                       want.repeat({3}) - 1),
            tol);
  EXPECT_LT(MaxAbs(got.hubble_distance.to(torch::kFloat64) / want_dh.repeat({3}) - 1), tol);
  EXPECT_EQ(got.stop.Summary(), "redshift: 3");
}

INSTANTIATE_TEST_SUITE_P(
    Flrw, ReferenceRay,
    ::testing::Combine(::testing::Values(Case{"eds", 70, 0.3}, Case{"de_sitter", 70, 0.3},
                                         Case{"lcdm", 70, 0.3}),
                       ::testing::Values(torch::kFloat64, torch::kFloat32)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).model) +
             (std::get<1>(info.param) == torch::kFloat64 ? "_float64" : "_float32");
    });

INSTANTIATE_TEST_SUITE_P(
    Flrw, PhysicalRays,
    ::testing::Combine(::testing::Values(Case{"eds", 70, 0.3}, Case{"de_sitter", 70, 0.3},
                                         Case{"lcdm", 70, 0.3}),
                       ::testing::Values(torch::kFloat64, torch::kFloat32)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).model) +
             (std::get<1>(info.param) == torch::kFloat64 ? "_float64" : "_float32");
    });

// A flat FLRW metric's distances at every redshift of z, in `mode`:
// "reference", the reference ray; "physical", one sky direction, the ray
// stopping past its farthest target as the dataset terms' rays do.
SkyDistances TraceFlrw(MetricModel& m, const std::string& mode, const torch::Tensor& z,
                       const torch::TensorOptions& options, RayTracerOptions o) {
  if (mode == "reference") return TraceReference(m, z.to(options), options, o);
  o.z_stop = 0;
  return TraceSky(m, torch::tensor({{0.0, 0.6, 0.8}}), torch::zeros({z.size(0)}, torch::kLong),
                  z.to(options), options, o);
}

// The read-out between steps is as accurate as the steps themselves: at a
// loose tolerance (rtol 1e-6, float64), where the steps are long, d_L of
// every FLRW case in both modes stays within 5 rtol of the closed forms. The
// cubic Hermite interpolant alone (3rd order, where the steps are 5th) gave
// 22-49 rtol here; with Dormand-Prince's dense-output correction it is 4th
// order and gives 0.5-1.5 rtol.
TEST(RayReadOut, DenseOutputIsAsAccurateAsTheSteps) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const double rtol = 1e-6;
  for (const Case& c : {Case{"eds", 70, 0.3}, Case{"de_sitter", 70, 0.3}, Case{"lcdm", 70, 0.3}}) {
    auto m = MakeFlrw(c);
    auto z = Redshifts();
    auto want = ClosedForms(c, z).first;
    RayTracerOptions o;
    o.rtol = rtol;
    o.atol = rtol / 10;
    torch::NoGradGuard no_grad;
    for (const std::string mode : {"reference", "physical"}) {
      auto got = TraceFlrw(*m, mode, z, f64, o);
      ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
      EXPECT_LT(MaxAbs(got.luminosity_distance / want - 1), 5 * rtol)
          << c.model << ", " << mode << ": " << got.stop.accepted << " steps";
    }
  }
}

// Step-size control on a ray running towards the big bang (Einstein-de
// Sitter to z = 2.5, the dataset terms' tolerances): the error of a fixed
// step grows about 8x from one step to the next, and the standard controller
// (h ~ err^-1/5 from the last step alone) kept proposing growth: 10 of 22
// steps were rejected in reference mode, 9 of 20 in physical. The predictive
// controller follows the shrinking steps: at most 2 rejected, and the
// distances stay within 3e-5 of the closed form (float64).
TEST(RayStepControl, FollowsASteepeningProblemWithFewRejections) {
  const Case c{"eds", 70, 0.3};
  auto m = MakeFlrw(c);
  auto z = Redshifts();
  auto want = ClosedForms(c, z).first;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  RayTracerOptions o;
  o.rtol = 1e-5;
  o.atol = 1e-6;
  torch::NoGradGuard no_grad;
  for (const std::string mode : {"reference", "physical"}) {
    auto got = TraceFlrw(*m, mode, z, f64, o);
    ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
    EXPECT_LE(got.stop.rejected, 2) << mode << ": " << got.stop.accepted << " accepted";
    EXPECT_LE(got.stop.accepted, 14) << mode;
    EXPECT_LT(MaxAbs(got.luminosity_distance / want - 1), 3e-5) << mode;
  }
}

// The dataset terms' default tolerances (lumpy::rays, as supernova_chi2 and
// bao_chi2 trace) in float32, the dtype training runs in: d_L within the
// float32 target of 1e-4 of the closed forms in both modes, z 0.01 to 2.3.
class DatasetTermDefaults
    : public ::testing::TestWithParam<std::tuple<Case, std::string>> {};

TEST_P(DatasetTermDefaults, MeetTheFloat32AccuracyTarget) {
  const auto [c, mode] = GetParam();
  auto params = Params::FromDefaults(rays::RaySpecs(), {{"mode", mode}});
  ASSERT_TRUE(params.ok()) << params.status();
  const RayTracerOptions o = rays::TracerOptions(*params);
  auto m = MakeFlrw(c);
  m->to(torch::kFloat32);
  auto z = Redshifts();
  auto want = ClosedForms(c, z).first;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  torch::NoGradGuard no_grad;
  auto got = TraceFlrw(*m, mode, z, options, o);
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  const double err = MaxAbs(got.luminosity_distance.to(torch::kFloat64) / want - 1);
  EXPECT_LT(err, 1e-4) << c.model << ", " << mode << ": rtol " << o.rtol << ", atol " << o.atol
                       << ", " << got.stop.accepted << " steps";
}

INSTANTIATE_TEST_SUITE_P(
    Flrw, DatasetTermDefaults,
    ::testing::Combine(::testing::Values(Case{"eds", 70, 0.3}, Case{"de_sitter", 70, 0.3},
                                         Case{"lcdm", 70, 0.3}),
                       ::testing::Values(std::string("reference"), std::string("physical"))),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).model) + "_" + std::get<1>(info.param);
    });

// The Jacobi map against a narrow bundle: in vacuum Kasner (p = 2/3, 2/3,
// -1/3, anisotropic), four neighbouring rays at angles +-eps along the two
// screen directions, integrated in the same batch; their separations at the
// same redshift, projected on the source's screen (orthogonal to u and k),
// span the bundle's cross-section, whose area per unit solid angle is D_A^2.
// 1e-4 relative. A sixth ray shows the anisotropy: another direction, another D_A.
TEST(JacobiMap, AgreesWithTheAreaOfANarrowBundle) {
  auto m = MakeBuiltIn<MetricModel>("kasner", {{"p1", 2.0 / 3}, {"p2", 2.0 / 3}, {"p3", -1.0 / 3}});
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto n = torch::tensor({0.3, -0.5, 0.8}, f64);
  n = n / n.norm();
  auto s1 = torch::linalg_cross(torch::tensor({0.0, 0.0, 1.0}, f64), n);
  s1 = s1 / s1.norm();
  auto s2 = torch::linalg_cross(n, s1);
  const double eps = 1e-4, z = 0.5;
  auto dirs = torch::stack({n, n + eps * s1, n - eps * s1, n + eps * s2, n - eps * s2,
                            torch::tensor({1.0, 0.0, 0.0}, f64)});
  RayTracerOptions tight;
  tight.rtol = 1e-10;
  tight.atol = 1e-12;
  tight.z_stop = 0;  // each ray stops at its target + 0.2
  torch::NoGradGuard no_grad;
  auto got = TraceSky(*m, dirs, torch::arange(6, torch::kLong), torch::full({6}, z, f64), f64, tight);
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
  auto x = got.source.narrow(1, 0, 4), k = got.source.narrow(1, 4, 4);
  auto g = m->jet(x.narrow(0, 0, 1), 0).g[0];
  auto dot = [&](const torch::Tensor& a, const torch::Tensor& b) { return torch::dot(a, torch::mv(g, b)); };
  auto u = torch::tensor({1.0, 0.0, 0.0, 0.0}, f64) / torch::sqrt(-g[0][0]);
  auto k0 = k[0];
  auto e = -dot(u, k0);
  auto d = k0 / e - u;
  auto screen = [&](const torch::Tensor& v) { return v + dot(u, v) * u - dot(d, v) * d; };
  auto a = screen((x[1] - x[2]) / (2 * eps)), b = screen((x[3] - x[4]) / (2 * eps));
  const double det = (dot(a, a) * dot(b, b) - dot(a, b).square()).item<double>();
  const double bundle = std::pow(det, 0.25) * 1000.0;
  const double jacobi = got.angular_distance[0].item<double>();
  EXPECT_NEAR(bundle / jacobi, 1.0, 1e-4) << "bundle " << bundle << " Mpc, Jacobi " << jacobi
                                          << " Mpc, " << got.stop.accepted << " steps";
  EXPECT_GT(std::abs(got.angular_distance[5].item<double>() / jacobi - 1), 1e-3)
      << got.angular_distance[5].item<double>() << " vs " << jacobi << " Mpc";
}

// A strongly sheared bundle in float32: screen vectors a = L e_y and b =
// L (e_y + 1e-4 e_z), each carrying a large multiple of the null k (which
// the Jacobi vectors may: only their screen part is the bundle), in
// Minkowski space. The area is 1e-4 L^2. The Gram determinant |a|^2 |b|^2 -
// (a.b)^2 needs 1e-8 relative precision and gave 0 in float32 (D_A = 0, mu
// = -infinity: the physical-mode run that died at step 63); the area as
// |a| |b_perp| on the projected screen vectors is within 1e-3.
TEST(JacobiMap, AreaOfAStronglyShearedBundleSurvivesFloat32) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const double l = 30.0;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto k = torch::tensor({1.0, 1.0, 0.0, 0.0}, f64);
  auto a = torch::tensor({0.0, 0.0, l, 0.0}, f64) + 7.0 * k;
  auto b = torch::tensor({0.0, 0.0, l, 1e-4 * l}, f64) - 11.0 * k;
  auto s = torch::zeros({1, 24}, f64);
  s[0].narrow(0, 0, 4).copy_(torch::tensor({-3.0, 1.0, 2.0, -1.0}, f64));
  s[0].narrow(0, 4, 4).copy_(k);
  s[0].narrow(0, 8, 4).copy_(a);
  s[0].narrow(0, 16, 4).copy_(b);
  auto g = torch::diag(torch::tensor({-1.0, 1.0, 1.0, 1.0}, f64)).unsqueeze(0);
  const double area = ray::BundleArea(s.to(f32), g.to(f32)).item<double>();
  EXPECT_NEAR(area / (1e-4 * l * l), 1.0, 1e-3) << area;
  // The same in float64, to round-off.
  EXPECT_NEAR(ray::BundleArea(s, g).item<double>() / (1e-4 * l * l), 1.0,
              1e-9);
}

// A metric that degenerates on the way: expanding (a = t, 1 + z = 1/t) with
// a lapse that vanishes at t = 0.4, where z = 1.5. The ray stops there for a
// counted reason, targets beyond it are flagged, and neither the distances
// nor their gradients hold anything non-finite.
// The fused CPU path of the integrator (right-hand side, stage states,
// error norms) against its tensor-operation path (RayTracerOptions::fused =
// false, what other devices run) through a SIREN, float64, both modes:
// the same steps, distances and parameter gradients to 1e-9 relative.
TEST(RayTracerPaths, FusedAndTensorPathsAgreeThroughASiren) {
  torch::manual_seed(5);  // a network whose rays all redshift at first
  auto siren = MakeBuiltIn<MetricModel>("siren", {{"output_init_std", 0.3}, {"fused", false}});
  siren->to(torch::kFloat64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto ray_of = torch::arange(3, torch::kLong);
  for (bool physical : {false, true}) {
    RayTracerOptions o;
    o.rtol = 1e-8;
    o.atol = 1e-10;
    auto trace = [&](const torch::Tensor& z) {
      return physical ? TraceSky(*siren, DirectionBins(3), ray_of, z, f64, o)
                      : TraceReference(*siren, z, f64, o);
    };
    // Targets at half of the redshift each ray reaches at its initialisation.
    torch::Tensor z;
    {
      torch::NoGradGuard no_grad;
      auto reach = trace(torch::full({3}, 10.0, f64)).z_max.detach();
      ASSERT_GT(reach.min().item<double>(), 1e-3);
      z = 0.5 * reach.expand({3}).contiguous();
    }
    std::vector<torch::Tensor> d_l, grads;
    std::vector<int64_t> steps;
    for (bool fused : {true, false}) {
      o.fused = fused;
      auto got = trace(z);
      ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.Summary();
      siren->zero_grad();
      got.luminosity_distance.sum().backward();
      std::vector<torch::Tensor> g;
      for (const auto& p : siren->parameters()) g.push_back(p.grad().flatten());
      d_l.push_back(got.luminosity_distance.detach());
      grads.push_back(torch::cat(g));
      steps.push_back(got.stop.accepted);
    }
    SCOPED_TRACE(physical ? "physical" : "reference");
    EXPECT_EQ(steps[0], steps[1]);
    EXPECT_LT(MaxAbs(d_l[0] / d_l[1] - 1), 1e-9);
    EXPECT_GT(MaxAbs(grads[1]), 0.0);
    EXPECT_LT(MaxAbs(grads[0] - grads[1]) / MaxAbs(grads[1]), 1e-9);
  }
}

// The fused path is differentiable once, and says how to get more when a
// second order is asked; the tensor path (fused = false) gives gradients of
// gradients.
TEST(RayTracerPaths, SecondOrderNeedsTheTensorPath) {
  torch::manual_seed(5);
  auto siren = MakeBuiltIn<MetricModel>("siren", {{"output_init_std", 0.05}, {"fused", false}});
  siren->to(torch::kFloat64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto w = siren->parameters()[0];
  auto z_max = [&](bool fused) {
    RayTracerOptions o;
    o.rtol = 1e-6;
    o.atol = 1e-8;
    o.fused = fused;
    return TraceReference(*siren, torch::full({1}, 10.0, f64), f64, o).z_max.sum();
  };
  auto g = torch::autograd::grad({z_max(false)}, {w}, {}, /*retain_graph=*/true,
                                 /*create_graph=*/true)[0];
  auto h = torch::autograd::grad({g.square().sum()}, {w}, {}, /*retain_graph=*/false,
                                 /*create_graph=*/false, /*allow_unused=*/true)[0];
  ASSERT_TRUE(h.defined());
  EXPECT_TRUE(torch::isfinite(h).all().item<bool>());
  EXPECT_GT(MaxAbs(h), 0.0);
  try {
    torch::autograd::grad({z_max(true)}, {w}, {}, true, /*create_graph=*/true);
    FAIL() << "the fused path accepted create_graph";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("RayTracerOptions::fused = false"), std::string::npos)
        << e.what();
  }
}

TEST(RayStops, ADegenerateMetricStopsTheRayWithoutNaN) {
  auto scale = torch::tensor(1.0, torch::kFloat64).requires_grad_(true);
  testing::FunctionMetric m([&](const torch::Tensor& x) {
    auto t = x.select(1, 0);
    return torch::diag_embed(torch::stack({-(t - 0.4) / 0.6 * scale, t * t, t * t, t * t}, 1));
  });
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto z = torch::tensor({0.05, 0.2, 5.0, 1e6}, f64);
  for (bool physical : {false, true}) {
    RayTracerOptions o;
    o.rtol = 1e-6;
    o.atol = 1e-8;
    auto got = physical ? TraceSky(m, torch::tensor({{1.0, 0.0, 0.0}}, f64), torch::zeros({4}, torch::kLong),
                                   z, f64, o)
                        : TraceReference(m, z, f64, o);
    const std::string why = got.stop.reasons[0];
    EXPECT_TRUE(why == "non-finite" || why == "non-lorentzian" || why == "singular") << why;
    EXPECT_TRUE(torch::isfinite(got.luminosity_distance).all().item<bool>());
    EXPECT_TRUE(got.reached[0].item<bool>() && got.reached[1].item<bool>());
    EXPECT_FALSE(got.reached[2].item<bool>() || got.reached[3].item<bool>());
    EXPECT_LT(got.z_max.max().item<double>(), 1.5);
    auto grad = torch::autograd::grad({got.luminosity_distance.sum() + got.z_max.sum()}, {scale},
                                      {}, /*retain_graph=*/false, /*create_graph=*/false,
                                      /*allow_unused=*/true)[0];
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << grad;
  }
}

// Direction bins cover the sphere: every direction has a bin within 1.6x the
// radius of a cap of the bins' mean area, and their centre of mass is the origin.
TEST(DirectionBins, CoverTheSphere) {
  auto bins = DirectionBins(48);
  EXPECT_LT(MaxAbs(bins.norm(2, 1) - 1), 1e-12);
  EXPECT_LT(MaxAbs(bins.mean(0)), 1e-2);
  auto gen = at::detail::createCPUGenerator(3);
  auto v = torch::randn({2000, 3}, gen, torch::kFloat64);
  v = v / v.norm(2, 1, true);
  auto nearest = bins.index_select(0, NearestBin(v, bins));
  auto angle = torch::acos((v * nearest).sum(1).clamp(-1, 1));
  EXPECT_LT(angle.max().item<double>(), 1.6 * std::acos(1 - 2.0 / 48));
  auto sky = SkyDirections(torch::tensor({0.0, 90.0}), torch::tensor({0.0, 0.0}));
  EXPECT_LT(MaxAbs(sky - torch::tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}}, torch::kFloat64)), 1e-15);
}

TEST(ReferenceRayGradient, DerivativesInH0AndOmegaMMatchFiniteDifferences) {
  const auto make = TrainableLcdm;

  auto z = Redshifts();
  auto w = torch::linspace(0.5, 1.5, z.size(0), torch::kFloat64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // Tight tolerances, so that the step-size changes between the finite
  // difference evaluations stay far below the derivative's accuracy.
  RayTracerOptions tight;
  tight.rtol = 1e-12;
  tight.atol = 1e-14;
  auto loss = [&](const std::shared_ptr<MetricModel>& m) {
    auto d = TraceReference(*m, z, f64, tight).luminosity_distance;
    return (w * torch::log(d)).sum();
  };
  auto m = make(70, 0.3);
  auto p = m->physical_parameters();
  auto grads = torch::autograd::grad({loss(m)}, {p[0].value, p[1].value});
  torch::NoGradGuard no_grad;
  const double eh = 1e-2, eo = 1e-4;
  const double fd_h = (loss(make(70 + eh, 0.3)) - loss(make(70 - eh, 0.3))).item<double>() / (2 * eh);
  const double fd_o = (loss(make(70, 0.3 + eo)) - loss(make(70, 0.3 - eo))).item<double>() / (2 * eo);
  EXPECT_NEAR(grads[0].item<double>() / fd_h, 1.0, 1e-6);
  EXPECT_NEAR(grads[1].item<double>() / fd_o, 1.0, 1e-6);
}

// The reference's read-out interpolates from the observer itself (r = 0)
// for targets below the second sample; its distance proxy sqrt(r^2 + 1e-9)
// keeps the gradient finite there.
TEST(ReferenceReadOut, GradientIsFiniteForTargetsNextToTheObserver) {
  auto z = torch::tensor({0.005, 0.01, 0.5}, torch::kFloat64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto m = TrainableLcdm(70, 0.3);
  auto p = m->physical_parameters();
  auto d = TraceReference(*m, z, f64, {}, ReferenceReadOut{}).luminosity_distance;
  ASSERT_TRUE(torch::isfinite(d).all().item<bool>()) << d;
  auto g = torch::autograd::grad({torch::log(d).sum()}, {p[0].value, p[1].value});
  EXPECT_TRUE(std::isfinite(g[0].item<double>()) && std::isfinite(g[1].item<double>())) << g[0] << " " << g[1];
  EXPECT_LT(g[0].item<double>(), 0);  // a larger H0 brings every supernova closer
}

using testing::DatasetContext;

// Its value and the gradient of that value in h0 and omega_m against central
// finite differences (1e-6 relative).
void ExpectGradientMatches(LossTerm& term) {
  auto value = [&](const std::shared_ptr<MetricModel>& m) {
    DatasetContext ctx;
    ctx.m = m.get();
    return term.evaluate(ctx).value;
  };
  auto m = TrainableLcdm(70, 0.3);
  auto v = value(m);
  auto p = m->physical_parameters();
  auto grads = torch::autograd::grad({v}, {p[0].value, p[1].value});
  torch::NoGradGuard no_grad;
  const double eh = 1e-2, eo = 1e-4;
  const double fd_h =
      (value(TrainableLcdm(70 + eh, 0.3)) - value(TrainableLcdm(70 - eh, 0.3))).item<double>() /
      (2 * eh);
  const double fd_o =
      (value(TrainableLcdm(70, 0.3 + eo)) - value(TrainableLcdm(70, 0.3 - eo))).item<double>() /
      (2 * eo);
  EXPECT_NEAR(grads[0].item<double>() / fd_h, 1.0, 1e-6);
  EXPECT_NEAR(grads[1].item<double>() / fd_o, 1.0, 1e-6);
}

// supernova_chi2 over the real Pantheon+ catalogue on flat LCDM, in both
// modes (physical: 6 direction bins): its value is the reference's mean of
// squared pulls computed independently from the closed-form distances, and
// its gradient in h0 and omega_m matches central finite differences.
class SupernovaChi2 : public ::testing::TestWithParam<std::string> {};

TEST_P(SupernovaChi2, ValueAndGradientOnFlatLcdm) {
  // Physical mode with 6 direction bins: the same code as 48, a test 8x cheaper.
  auto sn = MakeBuiltIn<LossTerm>(
      "supernova_chi2", {{"rtol", 1e-12}, {"atol", 1e-14}, {"mode", GetParam()}, {"bins", int64_t{6}}});
  ASSERT_TRUE(sn);
  auto path = ResolveDataFile("Pantheon+SH0ES.dat");
  ASSERT_TRUE(path.ok()) << path.status();
  auto cat = LoadSupernovae(*path, {});
  ASSERT_TRUE(cat.ok());
  DatasetContext ctx;
  auto m = TrainableLcdm(70, 0.3);
  ctx.m = m.get();
  const double v = sn->evaluate(ctx).value.item<double>();
  auto want_mu = 5 * torch::log10(LcdmDistance(cat->z, 70, 0.3)) + 25;
  const double want = ((want_mu - cat->mu) / cat->sigma).square().mean().item<double>();
  EXPECT_NEAR(v / want, 1.0, 1e-6);
  ExpectGradientMatches(*sn);
  const auto telemetry = sn->telemetry();
  std::map<std::string, double> t(telemetry.begin(), telemetry.end());
  EXPECT_EQ(t["unreached"], 0);
  EXPECT_GT(t["ray_steps"], 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SupernovaChi2, ::testing::Values("reference", "physical"));

// A metric with two negative eigenvalues (flat, invertible, not Lorentzian):
// the tracer stops the ray at its first step, unless asked to go on as the
// reference did (it never checked): the ray then runs on to t < -5.
TEST(RayStops, NonLorentzianStopIsASwitch) {
  testing::FunctionMetric wrong([](const torch::Tensor& x) {
    auto diag = torch::tensor({-1.0, 1.0, -1.0, 1.0}, x.options());
    return torch::diag_embed(diag.expand({x.size(0), 4}));
  });
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto z = torch::tensor({0.5}, torch::kFloat64);
  torch::NoGradGuard no_grad;
  RayTracerOptions o;
  auto stopped = TraceReference(wrong, z, f64, o).stop;
  EXPECT_EQ(stopped.Summary(), "non-lorentzian: 1");
  // Where: the state past its first step, and the eigenvalues (-1, -1, 1, 1)
  // there, two negative: not Lorentzian.
  ASSERT_EQ(stopped.bad.size(), 1u);
  const auto& bad = stopped.bad.front();
  EXPECT_EQ(bad.reason, "non-lorentzian");
  EXPECT_LT(bad.lambda, 0);
  EXPECT_NEAR(bad.x[0], 1 + bad.lambda, 1e-12);  // t = 1 + lambda along k = (1, 1, 0, 0)
  EXPECT_NEAR(bad.x[1], bad.lambda, 1e-12);
  EXPECT_EQ(bad.eigenvalues, (std::array<double, 4>{-1, -1, 1, 1}));
  o.stop_non_lorentzian = false;
  EXPECT_EQ(TraceReference(wrong, z, f64, o).stop.Summary(), "time: 1");
}

// What a recorder (ray_states.h) keeps of a trace. In Minkowski space the
// reference ray is the straight null line t = 1 + l, x = l (y = z = 0) until
// t < -5: every segment's ends lie on it, consecutive segments join, the
// first starts at the observer. Without a recorder nothing is kept; a ray
// stopped on a bad state records that state apart.
TEST(RayStates, ARecorderKeepsTheRaysSegmentsAndTheirBadStates) {
  testing::FunctionMetric flat([](const torch::Tensor& x) {
    auto diag = torch::tensor({-1.0, 1.0, 1.0, 1.0}, x.options());
    return torch::diag_embed(diag.expand({x.size(0), 4}));
  });
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto z = torch::tensor({0.5}, torch::kFloat64);
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(RayStateRecorder::Active());
  RayPositions kept;
  {
    RayStateRecorder recorder;
    EXPECT_TRUE(RayStateRecorder::Active());
    EXPECT_EQ(TraceReference(flat, z, f64).stop.Summary(), "time: 1");
    kept = recorder.positions();
  }
  EXPECT_FALSE(RayStateRecorder::Active());
  ASSERT_TRUE(kept.segments.defined());
  EXPECT_FALSE(kept.bad.defined());
  const auto& s = kept.segments;
  ASSERT_GT(s.size(0), 2);
  ASSERT_EQ(s.size(1), 8);
  for (int end : {0, 4}) {
    auto p = s.narrow(1, end, 4);
    EXPECT_LT((p.select(1, 1) - (p.select(1, 0) - 1)).abs().max().item<double>(), 1e-12);
    EXPECT_EQ(p.narrow(1, 2, 2).abs().max().item<double>(), 0.0);
  }
  EXPECT_TRUE(torch::equal(s[0].narrow(0, 0, 4), torch::tensor({1.0, 0.0, 0.0, 0.0}, f64)));
  EXPECT_TRUE(torch::equal(s.narrow(0, 1, s.size(0) - 1).narrow(1, 0, 4), s.narrow(0, 0, s.size(0) - 1).narrow(1, 4, 4)));
  EXPECT_LT(s[-1][4].item<double>(), -5.0);  // the last state is past t_min

  testing::FunctionMetric wrong([](const torch::Tensor& x) {
    auto diag = torch::tensor({-1.0, 1.0, -1.0, 1.0}, x.options());
    return torch::diag_embed(diag.expand({x.size(0), 4}));
  });
  RayStateRecorder recorder;
  const auto stop = TraceReference(wrong, z, f64).stop;
  ASSERT_EQ(stop.bad.size(), 1u);
  const auto bad = recorder.positions().bad;
  ASSERT_TRUE(bad.defined());
  ASSERT_EQ(bad.size(0), 1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bad[0][i].item<double>(), stop.bad[0].x[i]);
  // It stopped at its first step: no segment before the bad state.
  EXPECT_FALSE(recorder.positions().segments.defined());
}

// The reference ray of flat LCDM sampled at the reference's 50 affine
// parameters, by hand: dt/dl = 1/a(t), dx/dl = 1/a(t)^2 (k^t = 1/a and k_x =
// a^2 k^x = 1 are conserved; a = 1 at the observer), integrated by classical
// RK4 with 4000 steps per sample interval in the closed-form a(t) (error far
// below 1e-12); 1 + z = 1/a. The samples whose z passed the stop (2.5) lie
// past the ray's end. Returns the valid samples' z and d = (1+z)
// sqrt(x^2 + 1e-9).
std::pair<std::vector<double>, std::vector<double>> HandSampledLcdmRay(double h0, double om) {
  const double h = h0 * 1000.0 / 299792.458, ol = 1 - om;
  const double rate = 1.5 * std::sqrt(ol) * h, tau0 = std::asinh(std::sqrt(ol / om)) / rate;
  const double ratio = std::cbrt(om / ol);
  auto a = [&](double t) { return ratio * std::pow(std::sinh(rate * (t - 1 + tau0)), 2.0 / 3.0); };
  std::vector<double> zs = {0.0}, ds = {std::sqrt(1e-9)};
  double t = 1, x = 0;
  const int per = 4000;
  const double dl = -10.0 / 49 / per;
  for (int q = 1; q < 50; ++q) {
    for (int i = 0; i < per; ++i) {
      auto f = [&](double tt) { return 1 / a(tt); };
      const double k1 = f(t), k2 = f(t + dl / 2 * k1), k3 = f(t + dl / 2 * k2), k4 = f(t + dl * k3);
      auto g = [&](double tt) { return 1 / (a(tt) * a(tt)); };
      const double m1 = g(t), m2 = g(t + dl / 2 * k1), m3 = g(t + dl / 2 * k2), m4 = g(t + dl * k3);
      t += dl * (k1 + 2 * k2 + 2 * k3 + k4) / 6;
      x += dl * (m1 + 2 * m2 + 2 * m3 + m4) / 6;  // k^x > 0 at the observer: x < 0 into the past
      if (!(t > 1 - tau0)) return {zs, ds};  // the big bang
    }
    const double z = 1 / a(t) - 1;
    if (z > 2.5) break;  // the ray stopped before this sample
    zs.push_back(z);
    ds.push_back((1 + z) * std::sqrt(x * x + 1e-9));
  }
  return {zs, ds};
}

// jnp.interp in plain C++, and the reference's rule around it.
double HandReferenceDistance(const std::vector<double>& z_valid, const std::vector<double>& d_valid,
                             double target) {
  std::vector<double> z = z_valid, d = d_valid;
  const double z_max = *std::max_element(z.begin(), z.end());
  const double d_max = *std::max_element(d.begin(), d.end());
  while (z.size() < 50) {
    z.push_back(z_max);
    d.push_back(d_max);
  }
  double read;
  if (target < z.front()) {
    read = d.front();
  } else if (target > z.back()) {
    read = d.back();
  } else {
    size_t i = std::upper_bound(z.begin(), z.end(), target) - z.begin();
    i = std::clamp<size_t>(i, 1, z.size() - 1);
    const double dz = z[i] - z[i - 1];
    read = std::abs(dz) <= 4.9e-32 ? d[i - 1] : d[i - 1] + (target - z[i - 1]) / dz * (d[i] - d[i - 1]);
  }
  return read + (z_max < target ? 10 * (target - z_max) : 0.0);
}

// supernova_chi2 with the reference read-out over the real Pantheon+
// catalogue on flat LCDM: every supernova in the mean, the few beyond the
// last valid sample (z ~ 1.78 here: the ray passes z = 2.5 between the 11th
// and 12th samples) with 10 (z - z_max) added to their distance. The value
// is the rule applied by hand to the hand-integrated samples, to 1e-10; the
// gradient in h0 and omega_m matches central differences.
TEST(SupernovaChi2ReferenceReadOut, ValueIsTheRuleByHandAndGradientMatches) {
  auto sn = MakeBuiltIn<LossTerm>("supernova_chi2", {{"rtol", 1e-12}, {"atol", 1e-14},
                                                     {"interpolation", std::string("reference")}});
  ASSERT_TRUE(sn);
  auto path = ResolveDataFile("Pantheon+SH0ES.dat");
  ASSERT_TRUE(path.ok()) << path.status();
  auto cat = LoadSupernovae(*path, {});
  ASSERT_TRUE(cat.ok());
  auto [zs, ds] = HandSampledLcdmRay(70, 0.3);
  ASSERT_EQ(zs.size(), 11u) << "the ray should pass z = 2.5 between the 11th and 12th samples";
  double chi2 = 0;
  int beyond = 0;
  for (int64_t i = 0; i < cat->size(); ++i) {
    const double target = cat->z[i].item<double>();
    beyond += target > zs.back();
    const double d = 1000 * HandReferenceDistance(zs, ds, target);
    const double mu = 5 * std::log10(std::abs(d) + 1e-6) + 25;
    chi2 += std::pow((mu - cat->mu[i].item<double>()) / cat->sigma[i].item<double>(), 2);
  }
  chi2 /= static_cast<double>(cat->size());
  EXPECT_GE(beyond, 1);
  DatasetContext ctx;
  auto m = TrainableLcdm(70, 0.3);
  ctx.m = m.get();
  auto v = sn->evaluate(ctx).value;
  EXPECT_NEAR(v.item<double>() / chi2, 1.0, 1e-10) << v.item<double>() << " vs " << chi2;
  const auto telemetry = sn->telemetry();
  std::map<std::string, double> t(telemetry.begin(), telemetry.end());
  EXPECT_EQ(t["unreached"], beyond);

  auto p = m->physical_parameters();
  auto grads = torch::autograd::grad({v}, {p[0].value, p[1].value});
  torch::NoGradGuard no_grad;
  auto value = [&](double h0, double om) {
    auto mm = TrainableLcdm(h0, om);
    ctx.m = mm.get();
    return sn->evaluate(ctx).value.item<double>();
  };
  const double eh = 1e-4, eo = 1e-6;
  const double fd_h = (value(70 + eh, 0.3) - value(70 - eh, 0.3)) / (2 * eh);
  const double fd_o = (value(70, 0.3 + eo) - value(70, 0.3 - eo)) / (2 * eo);
  EXPECT_NEAR(grads[0].item<double>() / fd_h, 1.0, 1e-6);
  EXPECT_NEAR(grads[1].item<double>() / fd_o, 1.0, 1e-6);
}

// In physical mode each of the 48 bins' rays stops past its own farthest
// supernova (+0.2), not at the reference ray's z = 2.5: most bins hold only
// nearby supernovae, so the batch the jets see shrinks as the rays go out,
// down to the bins holding the farthest supernovae (z = 2.26, and 1.91 where
// one step passes both of their stops). Stopping every ray at 2.5, as
// before, the isotropic metric's rays all stopped in the same step and the
// last jets saw all 48.
TEST(SupernovaChi2Rays, PhysicalRaysStopPastTheirOwnTargets) {
  auto sn = MakeBuiltIn<LossTerm>("supernova_chi2", {{"mode", std::string("physical")}});
  ASSERT_TRUE(sn);
  auto lcdm = TrainableLcdm(70, 0.3);
  CountingMetric counting(lcdm);
  DatasetContext ctx;
  ctx.m = &counting;
  torch::NoGradGuard no_grad;
  sn->evaluate(ctx);
  ASSERT_FALSE(counting.points.empty());
  EXPECT_EQ(counting.points.front(), 48);
  EXPECT_LE(counting.points.back(), 2);
  const auto full = std::count(counting.points.begin(), counting.points.end(), 48);
  EXPECT_LT(2 * full, static_cast<int64_t>(counting.points.size()))
      << full << " of " << counting.points.size() << " jets on all 48 rays";
}


// In Minkowski space light is not redshifted: no supernova is reached, the
// chi^2 has no terms, and the loss is the compass alone, unreached_weight x
// the farthest redshift of each ray (reference: one ray; physical: each
// bin's farthest supernova), counted in the telemetry.
TEST_P(SupernovaChi2, UnreachedSupernovaeAreTheCompassAlone) {
  auto sn = MakeBuiltIn<LossTerm>("supernova_chi2", {{"mode", GetParam()}, {"bins", int64_t{6}}});
  ASSERT_TRUE(sn);
  auto cat = LoadSupernovae(*ResolveDataFile("Pantheon+SH0ES.dat"), {});
  ASSERT_TRUE(cat.ok());
  auto m = MakeBuiltIn<MetricModel>("minkowski");
  DatasetContext ctx;
  ctx.m = m.get();
  const double v = sn->evaluate(ctx).value.item<double>();
  double want = cat->z.max().item<double>();
  if (GetParam() == "physical") {
    auto bin = NearestBin(SkyDirections(cat->ra, cat->dec), DirectionBins(6));
    want = 0;
    for (int64_t b = 0; b < 6; ++b) {
      auto mask = bin == b;
      if (mask.any().item<bool>()) want += cat->z.masked_select(mask).max().item<double>();
    }
  }
  EXPECT_NEAR(v, 10 * want, 1e-9);
  const auto telemetry = sn->telemetry();
  std::map<std::string, double> t(telemetry.begin(), telemetry.end());
  EXPECT_EQ(t["unreached"], 1701);
}

// bao_chi2 on flat LCDM: the DR12 chi^2 computed independently from the
// closed forms D_M = d_L/(1+z), D_H = c/H(z) (1e-6 relative), in both modes;
// and its gradient against finite differences.
class BaoChi2 : public ::testing::TestWithParam<std::string> {};

TEST_P(BaoChi2, ValueAndGradientOnFlatLcdm) {
  auto bao = MakeBuiltIn<LossTerm>(
      "bao_chi2", {{"rtol", 1e-12}, {"atol", 1e-14}, {"mode", GetParam()}, {"bins", int64_t{6}}});
  ASSERT_TRUE(bao);
  auto path = ResolveDataFile("bao_dr12.csv");
  ASSERT_TRUE(path.ok()) << path.status();
  auto table = LoadBao(*path);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->size(), 3);
  double want = 0;
  const double rd = 147.09;
  for (int i = 0; i < 3; ++i) {
    const double z = table->z[i].item<double>();
    const double dm = testing::FlatLcdmLuminosityDistance(z, 70, 0.3) / (1 + z) / rd;
    const double dh = kC / 70 / std::sqrt(0.3 * std::pow(1 + z, 3) + 0.7) / rd;
    const double a = (dm - table->dm[i].item<double>()) / table->dm_err[i].item<double>();
    const double b = (dh - table->dh[i].item<double>()) / table->dh_err[i].item<double>();
    const double r = table->corr[i].item<double>();
    want += (a * a + b * b - 2 * r * a * b) / (1 - r * r);
  }
  // Flat LCDM fits the DR12 consensus: chi^2 ~ 8 for its 6 numbers (a table
  // in the wrong units gives ~1700).
  EXPECT_LT(want, 12);
  DatasetContext ctx;
  auto m = TrainableLcdm(70, 0.3);
  ctx.m = m.get();
  EXPECT_NEAR(bao->evaluate(ctx).value.item<double>() / want, 1.0, 1e-6);
  ExpectGradientMatches(*bao);
}

INSTANTIATE_TEST_SUITE_P(Modes, BaoChi2, ::testing::Values("reference", "physical"));

}  // namespace
}  // namespace lumpy
