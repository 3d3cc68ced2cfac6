#pragma once
// Conformance checks for plugin authors, on GoogleTest: call them from your
// plugin's own tests (the SDK templates do) to check the contracts the SDK
// headers state, with failures that name what broke. Header-only; link your
// test with GTest and Lumpy::sdk.
//
//   TEST(MyHandler, Conforms) {
//     lumpy::testing::ExpectHandlerConforms([] { return std::make_shared<MyHandler>(...); });
//   }
//
// Metrics (metric_model.h, jet.h): shapes and dtype of the jet at orders
// 0-2; g, dg, d2g symmetric in (i,j) and d2g in (k,l); every order against
// the nested-autograd oracle of the metric itself; finite values and
// parameter gradients; in_domain a [B] bool; a float32 instance (same seed)
// gives float32 numbers close to float64's.
//
// Handlers (constraint_handler.h): per_point [B] and a scalar total equal to
// mean(per_point); finite values and gradients (to the violation and to the
// handler's own parameters); the penalty attached to the violation, moved
// by it where it is positive, its gradient equal to finite differences
// (kinks skipped); telemetry names the same after every update; its state
// (registered buffers and parameters, module_state.h) through a checkpoint
// into a fresh handler gives the same next penalty and the same penalties
// over the updates that follow; a changed state changes the next penalty.
//
// Loss terms (loss_term.h), on a metric and points you give: a scalar value
// in the points' dtype; for point terms per_point [B], finite, value equal
// to its mean, a constraint's violation >= 0; a dataset term leaves
// per_point undefined; the value attached to the metric's parameters (when
// they are trainable), finite gradients to them equal to finite differences
// (kinks skipped); the same points give the same value; telemetry names
// stable.
//
// Curricula (curriculum_weighter.h), given a domain's bounds: a finite scalar
// attached to the per-point loss and moved by it (no finite-difference check:
// weights may stop the gradient by design), finite gradients to the
// parameters; reduce() leaves the state alone
// (update() changes it); telemetry names stable; the module's state through a
// checkpoint archive gives the same reduction, and the same ones over the
// updates that follow.

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lumpy/constraint_handler.h"
#include "lumpy/curriculum_weighter.h"
#include "lumpy/geometry.h"
#include "lumpy/jet.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"
#include "lumpy/module_state.h"
#include "lumpy/report.h"

namespace lumpy::testing {

// Points [n,4] in float64: t uniform in [t0, t1], x, y, z in [-r, r];
// the same for the same seed.
inline torch::Tensor UniformPoints(int64_t n, double t0 = -4.0, double t1 = 1.0, double r = 1.0,
                                   uint64_t seed = 1) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto u = torch::rand({n, 4}, gen, torch::kFloat64);
  auto lo = torch::tensor({t0, -r, -r, -r}, torch::kFloat64);
  auto hi = torch::tensor({t1, r, r, r}, torch::kFloat64);
  return lo + u * (hi - lo);
}

namespace internal {

inline std::vector<std::string> Names(const std::vector<std::pair<std::string, double>>& telemetry) {
  std::vector<std::string> out;
  for (const auto& [k, v] : telemetry) out.push_back(k);
  return out;
}

inline std::string Shape(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// max |a - b| / (1 + max |b|): a relative error that stays meaningful where
// components vanish.
inline double Error(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = (a.detach().to(torch::kFloat64) - b.detach().to(torch::kFloat64)).abs().max().item<double>();
  return d / (1.0 + b.detach().to(torch::kFloat64).abs().max().item<double>());
}

// The largest asymmetry of t in dimensions (a, b).
inline double Asymmetry(const torch::Tensor& t, int64_t a, int64_t b) {
  return Error(t, t.transpose(a, b));
}

// An archive as a checkpoint file holds it, read back.
inline torch::serialize::InputArchive Reopened(torch::serialize::OutputArchive& out) {
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  return in;
}

// `from`'s state (module_state.h) through the bytes of a checkpoint into
// `to`, as the engine saves and resumes it.
inline absl::Status ThroughCheckpoint(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::serialize::OutputArchive out;
  SaveModuleState(from, out);
  auto in = Reopened(out);
  return LoadModuleState(in, to, "the plugin");
}

// Finite (and defined): a result, so that the caller decides whether the
// test goes on (ASSERT_TRUE) or not (EXPECT_TRUE). An ASSERT inside a void
// helper only returns from the helper: the test went on past the failure.
inline ::testing::AssertionResult AllFinite(const torch::Tensor& t, const std::string& what) {
  if (!t.defined()) return ::testing::AssertionFailure() << what << " is undefined";
  if (!torch::isfinite(t.detach()).all().item<bool>()) {
    return ::testing::AssertionFailure() << what << " has non-finite entries";
  }
  return ::testing::AssertionSuccess();
}

// d f / d x_i by central differences at up to `count` entries of x where
// mask is true, against `grad` (autograd's): a failure names the entry and
// both values. Where they disagree, an entry at a kink or a jump (a
// max(0, .), a tolerance: the one-sided differences' gap does not shrink
// with the step) is skipped, and one with a kink just inside the step is
// checked again at a quarter of it. `f` must not change any state.
inline ::testing::AssertionResult MatchesFiniteDifferences(const std::function<double(const torch::Tensor&)>& f,
                                                          const torch::Tensor& x, const torch::Tensor& grad,
                                                          const torch::Tensor& mask, int count, double rtol,
                                                          const std::string& what) {
  const auto flat_x = x.detach().to(torch::kFloat64).reshape({-1}).clone();
  const auto flat_g = grad.detach().to(torch::kFloat64).reshape({-1});
  const auto flat_m = mask.reshape({-1});
  // The arithmetic of x's dtype sets what finite differences can resolve:
  // in float32 a larger relative step, so that round-off does not swamp it.
  const bool f64 = x.scalar_type() == torch::kFloat64;
  const double eps = f64 ? 2.2e-16 : x.scalar_type() == torch::kFloat32 ? 1.2e-7 : 1e-3;
  const double rel = f64 ? 1e-4 : 5e-3;
  rtol = std::max(rtol, 1e4 * eps);
  auto at = [&](int64_t i, double value) {
    auto y = flat_x.clone();
    y[i] = value;
    return f(y.view(x.sizes()).to(x.scalar_type()));
  };
  const double f0 = f(flat_x.view(x.sizes()).to(x.scalar_type()));
  int checked = 0, kinks = 0;
  for (int64_t i = 0; i < flat_x.numel() && checked < count; ++i) {
    if (!flat_m[i].item<bool>() || kinks > 20 * count) continue;
    const double xi = flat_x[i].item<double>();
    const double h = xi != 0 ? rel * std::abs(xi) : rel * 1e-2;  // never across 0 from a nonzero entry
    const double noise = (f64 ? 1e3 : 1e2) * eps * (1.0 + std::abs(f0)) / h;  // round-off of f over the step
    const double g = flat_g[i].item<double>();
    auto agrees = [&](double difference, double slack) {
      return std::abs(g - difference) <= rtol * (std::abs(g) + std::abs(difference)) + slack;
    };
    const double up = at(i, xi + h), down = at(i, xi - h);
    const double central = (up - down) / (2 * h);
    if (agrees(central, noise)) {
      ++checked;
      continue;
    }
    const double gap = std::abs((up - f0) / h - (f0 - down) / h);
    const double half = std::abs((at(i, xi + h / 2) - f0) / (h / 2) - (f0 - at(i, xi - h / 2)) / (h / 2));
    if (half > 0.75 * gap && gap > noise) {  // smooth: the gap halves with the step; a kink: it does not
      ++kinks;
      continue;
    }
    if (agrees((at(i, xi + h / 4) - at(i, xi - h / 4)) / (h / 2), 4 * noise)) {  // a kink between h/4 and h
      ++checked;
      continue;
    }
    return ::testing::AssertionFailure()
           << what << ": autograd gives " << g << " at entry " << i << ", finite differences " << central
           << " (the gradient is wrong: a detach, a custom backward or a .data write breaks it)";
  }
  if (checked == 0 && kinks > 0) {
    return ::testing::AssertionFailure() << what << ": every entry tried (" << kinks
                                         << ") is a kink or a jump: the function is not differentiable there";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace internal

// ---------------------------------------------------------------- metrics

using MetricFactory = std::function<std::shared_ptr<MetricModel>()>;

struct MetricTolerances {
  double oracle = 1e-9;    // float64 jet against the autograd oracle (relative)
  double symmetry = 1e-12;
  double float32 = 1e-4;   // float32 against float64 (relative)
};

// `make` builds the metric under test; it is called with torch's seed set to
// the same value each time, so two calls give the same parameters. `points`
// [B,4]: where to check (only those in_domain are used; at least one must be).
inline void ExpectMetricConforms(const MetricFactory& make, const torch::Tensor& points,
                                 MetricTolerances tol = {}) {
  using internal::Asymmetry;
  using internal::Error;
  torch::manual_seed(0);
  std::shared_ptr<MetricModel> metric = make();
  ASSERT_NE(metric, nullptr) << "the factory made no metric";
  metric->to(torch::kFloat64);
  const auto x = points.to(torch::kFloat64);
  ASSERT_EQ(x.dim(), 2);
  ASSERT_EQ(x.size(1), 4);
  const auto inside = metric->in_domain(x);
  ASSERT_EQ(inside.scalar_type(), torch::kBool) << "in_domain must return bool, got " << inside.scalar_type();
  ASSERT_EQ(inside.sizes(), torch::IntArrayRef({x.size(0)})) << "in_domain must return [B], got "
                                                             << internal::Shape(inside);
  ASSERT_TRUE(inside.any().item<bool>()) << "none of the test points is in the metric's domain";
  const auto xi = x.index({inside});
  const int64_t b = xi.size(0);

  const Jet oracle = AutogradJet([&](const torch::Tensor& p) { return metric->jet(p, 0).g; }, xi, 2,
                                 /*create_graph=*/false);
  for (int order = 0; order <= 2; ++order) {
    SCOPED_TRACE("jet of order " + std::to_string(order));
    const Jet jet = metric->jet(xi, order);
    EXPECT_GE(jet.order, order) << "Jet::order must say which derivatives it holds";
    ASSERT_EQ(jet.g.sizes(), torch::IntArrayRef({b, 4, 4})) << "g: " << internal::Shape(jet.g);
    EXPECT_EQ(jet.g.scalar_type(), torch::kFloat64) << "g must be in the points' dtype";
    EXPECT_TRUE(internal::AllFinite(jet.g, "g"));
    EXPECT_LE(Asymmetry(jet.g, 1, 2), tol.symmetry) << "g_ij != g_ji";
    EXPECT_LE(Error(jet.g, oracle.g), tol.oracle) << "g differs from jet(x, 0).g";
    if (order >= 1) {
      ASSERT_EQ(jet.dg.sizes(), torch::IntArrayRef({b, 4, 4, 4})) << "dg: " << internal::Shape(jet.dg);
      EXPECT_TRUE(internal::AllFinite(jet.dg, "dg"));
      EXPECT_LE(Asymmetry(jet.dg, 1, 2), tol.symmetry) << "d_k g_ij != d_k g_ji";
      EXPECT_LE(Error(jet.dg, oracle.dg), tol.oracle)
          << "dg[b,i,j,k] must be d_k g_ij (the autograd oracle of the metric disagrees)";
    }
    if (order >= 2) {
      ASSERT_EQ(jet.d2g.sizes(), torch::IntArrayRef({b, 4, 4, 4, 4})) << "d2g: " << internal::Shape(jet.d2g);
      EXPECT_TRUE(internal::AllFinite(jet.d2g, "d2g"));
      EXPECT_LE(Asymmetry(jet.d2g, 1, 2), tol.symmetry) << "d2g not symmetric in (i, j)";
      EXPECT_LE(Asymmetry(jet.d2g, 3, 4), tol.symmetry) << "d2g not symmetric in (k, l)";
      EXPECT_LE(Error(jet.d2g, oracle.d2g), tol.oracle)
          << "d2g[b,i,j,k,l] must be d_k d_l g_ij (the autograd oracle of the metric disagrees)";
    }
  }

  // Gradients reach the parameters, finite.
  const auto params = metric->parameters();
  if (!params.empty()) {
    const Jet jet = metric->jet(xi, 2);
    (jet.g.sum() + jet.dg.sum() + jet.d2g.sum()).backward();
    bool any = false;
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      any = true;
      EXPECT_TRUE(internal::AllFinite(p.grad(), "a parameter's gradient"));
    }
    EXPECT_TRUE(any) << "the metric has parameters but the jet's graph reaches none of them";
  }

  // float32: the same metric (same seed) in float32.
  torch::manual_seed(0);
  std::shared_ptr<MetricModel> metric32 = make();
  metric32->to(torch::kFloat32);
  const Jet j32 = metric32->jet(xi.to(torch::kFloat32), 1);
  EXPECT_EQ(j32.g.scalar_type(), torch::kFloat32) << "a float32 metric must give float32 g";
  EXPECT_EQ(j32.dg.scalar_type(), torch::kFloat32) << "a float32 metric must give float32 dg";
  EXPECT_LE(Error(j32.g, oracle.g), tol.float32) << "float32 g far from float64 g";
  EXPECT_LE(Error(j32.dg, oracle.dg), tol.float32) << "float32 dg far from float64 dg";
}

// --------------------------------------------------------------- handlers

using HandlerFactory = std::function<std::shared_ptr<ConstraintHandler>()>;

// Violations [points] >= 0 in float64, a quarter of them 0, of a scale that
// changes with k (so updates see different steps).
inline torch::Tensor Violations(int64_t points, int k) {
  auto gen = at::detail::createCPUGenerator(100 + k);
  auto v = torch::randn({points}, gen, torch::kFloat64).clamp_min(0) * std::pow(10.0, (k % 5) - 3);
  return v;
}

namespace internal {

// One step of penalty, backward and update, with every check of the step.
// `completed` is set last: false after a fatal failure.
inline void ExpectHandlerStepConforms(ConstraintHandler& handler, int64_t points, int k,
                                      const std::vector<std::string>& names, bool& moved, bool& completed) {
  completed = false;
  auto v = Violations(points, k).requires_grad_(true);
  Penalty p = handler.penalty(v);
  ASSERT_TRUE(p.per_point.defined() && p.total.defined()) << "penalty() must set per_point and total";
  ASSERT_EQ(p.per_point.sizes(), torch::IntArrayRef({points}))
      << "per_point must be [B] like the violation, got " << Shape(p.per_point);
  ASSERT_EQ(p.total.dim(), 0) << "total must be a scalar, got " << Shape(p.total);
  EXPECT_TRUE(AllFinite(p.per_point, "per_point"));
  const double total = p.total.item<double>(), mean = p.per_point.mean().item<double>();
  EXPECT_LE(std::abs(total - mean), 1e-12 * (1.0 + std::abs(mean))) << "total " << total
                                                                    << " != mean(per_point) " << mean;
  for (auto& q : handler.parameters()) {
    if (q.grad().defined()) q.grad().zero_();
  }
  // The penalty is a function of the violation that training can follow:
  // attached to it, moved by it where it is positive, with the gradient
  // that finite differences of the same penalty give.
  ASSERT_TRUE(p.total.requires_grad())
      << "the penalty is detached from the violation: training would never reduce the violation";
  p.total.backward();
  ASSERT_TRUE(v.grad().defined()) << "the penalty does not reach the violation (detached?)";
  EXPECT_TRUE(AllFinite(v.grad(), "d total / d violation"));
  const auto positive = v.detach() > 0;
  moved |= v.grad().index({positive}).ne(0).any().item<bool>();
  EXPECT_TRUE(MatchesFiniteDifferences(
      [&](const torch::Tensor& x) {
        torch::NoGradGuard no_grad;
        return handler.penalty(x).total.item<double>();
      },
      v, v.grad(), positive, 4, 1e-5, "d total / d violation"));
  for (auto& q : handler.parameters()) {
    if (q.grad().defined()) EXPECT_TRUE(AllFinite(q.grad(), "a handler parameter's gradient"));
  }
  handler.update(v.detach(), k);
  const auto telemetry = handler.telemetry();
  EXPECT_EQ(Names(telemetry), names) << "telemetry names must not change between steps";
  for (const auto& [name, value] : telemetry) EXPECT_TRUE(std::isfinite(value)) << name << " = " << value;
  completed = true;
}

// `resumed`, loaded from `handler`'s checkpoint after `updates` steps, gives
// the same penalty and goes on giving it over four more updates: state that
// only update() reads (an average of past violations kept as a plain
// member) is state too.
// Returns false if the state does not load back.
inline bool ExpectResumedHandlerFollows(ConstraintHandler& handler, ConstraintHandler& resumed,
                                        int64_t points, int updates) {
  const absl::Status st = ThroughCheckpoint(handler, resumed);
  if (!st.ok()) {
    ADD_FAILURE() << "its own state does not load back: " << st.message();
    return false;
  }
  const auto v = Violations(points, updates);
  const Penalty a = handler.penalty(v), b = resumed.penalty(v);
  EXPECT_TRUE(torch::equal(a.per_point.detach(), b.per_point.detach()))
      << "a resumed handler gives another penalty: penalty() reads something update() changed that is not a "
         "registered buffer or parameter";
  for (int k = updates; k < updates + 4; ++k) {
    const auto next = Violations(points, k + 1);
    handler.update(next, k);
    resumed.update(next, k);
    const auto after = Violations(points, k + 2);
    if (!torch::equal(handler.penalty(after).per_point.detach(), resumed.penalty(after).per_point.detach())) {
      ADD_FAILURE() << "a resumed handler diverges " << k - updates + 1
                    << " update(s) after its checkpoint: update() reads something it changed that is not a "
                       "registered buffer or parameter (keep all of the handler's state in them)";
      return true;
    }
  }
  return true;
}

// Changing every buffer and parameter of `changed` changes its penalty
// against the unchanged `original`'s.
inline void ExpectStateChangesPenalty(ConstraintHandler& original, ConstraintHandler& changed, int64_t points) {
  auto named = changed.named_parameters();
  for (const auto& b : changed.named_buffers()) named.insert(b.key(), b.value());
  if (named.is_empty()) return;
  {
    torch::NoGradGuard no_grad;
    for (auto& t : named) t.value().is_floating_point() ? t.value().mul_(1.5).add_(0.5) : t.value().add_(1);
  }
  const auto large = Violations(points, 4) + 0.1;
  EXPECT_FALSE(torch::allclose(changed.penalty(large).per_point.detach(), original.penalty(large).per_point.detach()))
      << "changing every buffer and parameter left the penalty as it was: the registered state holds nothing "
         "penalty() reads";
}

}  // namespace internal

// `updates` steps of penalty, backward and update, then the state checks:
// through a checkpoint, over later updates, and that the state matters.
inline void ExpectHandlerConforms(const HandlerFactory& make, int64_t points = 32, int updates = 6) {
  std::shared_ptr<ConstraintHandler> handler = make();
  ASSERT_NE(handler, nullptr) << "the factory made no handler";
  const auto names = internal::Names(handler->telemetry());
  bool moved = false;  // d total / d violation != 0 somewhere, on some step (a tolerance may hide small ones)
  for (int k = 0; k < updates; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    bool completed = false;
    internal::ExpectHandlerStepConforms(*handler, points, k, names, moved, completed);
    if (!completed) return;
  }
  EXPECT_TRUE(moved) << "the penalty does not depend on the violation: d total / d violation is 0 wherever it "
                       "is positive, at every step";
  std::shared_ptr<ConstraintHandler> resumed = make();
  if (!internal::ExpectResumedHandlerFollows(*handler, *resumed, points, updates)) return;
  internal::ExpectStateChangesPenalty(*handler, *resumed, points);
}

// -------------------------------------------------------------- loss terms

namespace internal {

// A StepContext over fixed points of one metric, as the engine's: each
// Geometry computed on first use and extended when a higher order is asked;
// the observer at `observer`.
class PointsContext final : public StepContext {
 public:
  PointsContext(MetricModel& metric, torch::Tensor points, int64_t step, Event observer = kDefaultObserver)
      : metric_(metric), points_(std::move(points)), step_(step), observer_event_(observer) {}
  const torch::Tensor& points() override { return points_; }
  Geometry& geometry(int order) override { return At(points_, order, &geometry_); }
  Geometry& observer(int order) override {
    return At(EventPoint(observer_event_, points_.options()), order, &observer_);
  }
  MetricModel& metric() override { return metric_; }
  int64_t step() const override { return step_; }
  torch::TensorOptions options() const override { return points_.options(); }
  Event observer_event() const override { return observer_event_; }

 private:
  Geometry& At(const torch::Tensor& x, int order, std::unique_ptr<Geometry>* slot) {
    if (!*slot) {
      *slot = std::make_unique<Geometry>(metric_.jet(x, order));
    } else if ((*slot)->order() < order) {
      (*slot)->Extend(metric_.jet(x, order));
    }
    return **slot;
  }
  MetricModel& metric_;
  torch::Tensor points_;
  int64_t step_;
  Event observer_event_;
  std::unique_ptr<Geometry> geometry_, observer_;
};

}  // namespace internal

using LossFactory = std::function<std::shared_ptr<LossTerm>()>;

namespace internal {

// What a term offers `lumpy report`, `probe` and `sky` (lumpy/report.h):
// a probe column is a per-point value, so a dataset term has none, and its
// name is a CSV column's; a Hubble diagram under `metric` has objects with
// finite observations, a model modulus wherever an object was reached, and
// a finite curve.
inline void ExpectReportCapabilitiesConform(LossTerm& term, LossKind kind, MetricModel& metric,
                                            const torch::TensorOptions& options) {
  const std::string column = ProbeColumnOf(term);
  if (!column.empty()) {
    EXPECT_NE(kind, LossKind::kDataset) << "a dataset term has no per-point value for a probe column";
    EXPECT_EQ(column.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"), std::string::npos)
        << "probe column \"" << column << "\": lower-case letters, digits and _ only (a CSV header)";
  }
  HubbleDiagramSource* source = HubbleDiagramOf(term);
  if (source == nullptr) return;
  torch::NoGradGuard no_grad;
  const absl::StatusOr<HubbleDiagram> d = source->hubble_diagram(metric, options, kDefaultObserver);
  ASSERT_TRUE(d.ok()) << "hubble_diagram() failed: " << d.status().message();
  EXPECT_FALSE(d->objects.empty()) << "a Hubble diagram without objects";
  int64_t bad = 0;
  for (const auto& o : d->objects) {
    const bool observed = std::isfinite(o.z) && o.z > 0 && std::isfinite(o.mu_obs) && o.sigma > 0;
    if (!observed || (o.reached && !std::isfinite(o.mu_model))) ++bad;
  }
  EXPECT_EQ(bad, 0) << bad << " of the diagram's " << d->objects.size()
                    << " objects have a non-finite or non-positive z, mu_obs or sigma, or were reached "
                       "without a finite mu_model";
  for (const auto& c : d->curve) {
    EXPECT_TRUE(std::isfinite(c.z) && std::isfinite(c.mu)) << "the curve of ray " << c.ray << " is not finite";
  }
}

}  // namespace internal

// `kind` as the plugin registers it; `points` [B,4] inside the metric's
// domain (a dataset term is evaluated on none of them, as the engine does).
inline void ExpectLossTermConforms(const LossFactory& make, LossKind kind, MetricModel& metric,
                                   const torch::Tensor& points) {
  std::shared_ptr<LossTerm> term = make();
  ASSERT_NE(term, nullptr) << "the factory made no loss term";
  const bool dataset = kind == LossKind::kDataset;
  const auto names = internal::Names(term->telemetry());
  double first = 0;
  for (int k = 0; k < 2; ++k) {
    SCOPED_TRACE("evaluation " + std::to_string(k));
    for (auto& p : metric.parameters()) {
      if (p.grad().defined()) p.grad().zero_();
    }
    internal::PointsContext ctx(metric, dataset ? points.narrow(0, 0, 0) : points, k);
    const LossValue v = term->evaluate(ctx);
    ASSERT_TRUE(v.value.defined()) << "evaluate() must set value";
    ASSERT_EQ(v.value.dim(), 0) << "value must be a scalar, got " << internal::Shape(v.value);
    EXPECT_EQ(v.value.scalar_type(), points.scalar_type()) << "value must be in the points' dtype";
    EXPECT_TRUE(internal::AllFinite(v.value, "value"));
    if (dataset) {
      EXPECT_FALSE(v.per_point.defined()) << "a dataset term leaves per_point undefined";
    } else {
      ASSERT_TRUE(v.per_point.defined()) << "a point term must set per_point";
      ASSERT_EQ(v.per_point.sizes(), torch::IntArrayRef({points.size(0)}))
          << "per_point must be [B], got " << internal::Shape(v.per_point);
      EXPECT_TRUE(internal::AllFinite(v.per_point, "per_point"));
      const double value = v.value.item<double>(), mean = v.per_point.mean().item<double>();
      EXPECT_LE(std::abs(value - mean), 1e-10 * (1.0 + std::abs(mean))) << "value " << value << " != mean(per_point) "
                                                                        << mean;
      if (kind == LossKind::kConstraint) {
        EXPECT_GE(v.per_point.min().item<double>(), 0.0) << "a constraint's violation must be >= 0";
      }
    }
    bool trainable = false;
    for (const auto& p : metric.parameters()) trainable |= p.requires_grad();
    if (trainable) {
      ASSERT_TRUE(v.value.requires_grad())
          << "the value is detached from the metric's parameters: training could not follow it";
    }
    if (v.value.requires_grad()) {
      v.value.backward();
      torch::Tensor checked;
      for (const auto& p : metric.parameters()) {
        if (!p.grad().defined()) continue;
        EXPECT_TRUE(internal::AllFinite(p.grad(), "a metric parameter's gradient"));
        if (!checked.defined()) checked = p;
      }
      if (trainable) ASSERT_TRUE(checked.defined()) << "the value reaches none of the metric's parameters";
      if (k == 0 && checked.defined()) {
        // The gradient of one parameter tensor against finite differences of
        // the value; the parameter is put back however evaluate() ends.
        const auto saved = checked.detach().clone();
        struct Restore {
          torch::Tensor param, value;
          ~Restore() {
            torch::NoGradGuard no_grad;
            param.copy_(value);
          }
        } restore{checked, saved};
        auto value_at = [&](const torch::Tensor& x) {
          {
            torch::NoGradGuard no_grad;
            checked.copy_(x);
          }
          internal::PointsContext moved(metric, dataset ? points.narrow(0, 0, 0) : points, k);
          return term->evaluate(moved).value.item<double>();
        };
        EXPECT_TRUE(internal::MatchesFiniteDifferences(value_at, saved, checked.grad(),
                                                       torch::ones_like(saved, torch::kBool), 3, 1e-5,
                                                       "d value / d metric parameter"));
      }
    }
    if (k == 0) {
      first = v.value.item<double>();
    } else {
      EXPECT_EQ(v.value.item<double>(), first) << "the same metric and points gave another value";
    }
    EXPECT_EQ(internal::Names(term->telemetry()), names) << "telemetry names must not change between steps";
  }
  internal::ExpectReportCapabilitiesConform(*term, kind, metric, points.options());
}

// --------------------------------------------------------------- curricula

using CurriculumFactory = std::function<std::shared_ptr<CurriculumWeighter>()>;

namespace internal {

// Every buffer and parameter of a module, by name, detached copies.
inline std::map<std::string, torch::Tensor> StateOf(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
}

inline bool SameState(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !torch::equal(v, it->second)) return false;
  }
  return true;
}

}  // namespace internal

// `bounds`: the domain's box the curriculum is given (set_bounds), as the
// engine gives it; the points are drawn inside it.
inline void ExpectCurriculumConforms(const CurriculumFactory& make, int64_t points = 64,
                                     DomainBounds bounds = {{-4.0, -1.0, -1.0, -1.0}, {1.0, 1.0, 1.0, 1.0}}) {
  torch::manual_seed(0);
  std::shared_ptr<CurriculumWeighter> curriculum = make();
  ASSERT_NE(curriculum, nullptr) << "the factory made no curriculum";
  curriculum->to(torch::kFloat64);
  curriculum->set_bounds(bounds);
  const auto x = UniformPoints(points, bounds.lo[0], bounds.hi[0], bounds.hi[1]);
  const auto names = internal::Names(curriculum->telemetry());
  for (int k = 0; k < 4; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    auto loss = (Violations(points, k) + 1e-3).requires_grad_(true);
    for (auto& p : curriculum->parameters()) {
      if (p.grad().defined()) p.grad().zero_();
    }
    const auto before = internal::StateOf(*curriculum);
    auto r = curriculum->reduce(x, loss);
    EXPECT_TRUE(internal::SameState(before, internal::StateOf(*curriculum)))
        << "reduce() changed the curriculum's state: change it in update(), after the optimizer step";
    ASSERT_EQ(r.dim(), 0) << "reduce() must return a scalar, got " << internal::Shape(r);
    EXPECT_TRUE(internal::AllFinite(r, "the reduced loss"));
    ASSERT_TRUE(r.requires_grad()) << "the reduction is detached from the per-point loss";
    r.backward();
    ASSERT_TRUE(loss.grad().defined()) << "the reduction does not depend on the per-point loss";
    EXPECT_TRUE(internal::AllFinite(loss.grad(), "d reduced / d per-point loss"));
    // No finite-difference check here: a curriculum's weights may stop the
    // gradient by design (causal weights are functions of the loss, held
    // fixed in the gradient).
    EXPECT_TRUE(loss.grad().ne(0).any().item<bool>()) << "the reduction does not move with the per-point loss";
    for (const auto& p : curriculum->parameters()) {
      if (p.grad().defined()) EXPECT_TRUE(internal::AllFinite(p.grad(), "a curriculum parameter's gradient"));
    }
    {  // a gradient step, so that the state checked below is not the initial one
      torch::NoGradGuard no_grad;
      for (auto& p : curriculum->parameters()) {
        if (p.grad().defined()) p.sub_(1e-2 * p.grad());
      }
    }
    curriculum->update(x, loss.detach(), k);
    EXPECT_EQ(internal::Names(curriculum->telemetry()), names) << "telemetry names must not change";
  }
  // Through a checkpoint into a fresh instance of another seed, given the
  // same bounds as the engine does: the same reduction, and the same ones
  // over the updates that follow.
  torch::manual_seed(12345);
  std::shared_ptr<CurriculumWeighter> resumed = make();
  resumed->to(torch::kFloat64);
  resumed->set_bounds(bounds);
  const absl::Status st = internal::ThroughCheckpoint(*curriculum, *resumed);
  ASSERT_TRUE(st.ok()) << "its own state does not load back: " << st.message();
  for (int k = 4; k < 8; ++k) {
    const auto loss = Violations(points, k + 5) + 1e-3;
    torch::NoGradGuard no_grad;
    if (!torch::equal(curriculum->reduce(x, loss), resumed->reduce(x, loss))) {
      ADD_FAILURE() << (k == 4 ? "a curriculum loaded from its archive reduces differently"
                               : "a resumed curriculum diverges " + std::to_string(k - 4) +
                                     " update(s) after its checkpoint: update() changed something that is not a "
                                     "registered buffer or parameter");
      break;
    }
    curriculum->update(x, loss, k);
    resumed->update(x, loss, k);
  }
}

}  // namespace lumpy::testing
