#pragma once
// The conformance checks of loss terms (loss_term.h, report.h): ExpectLossTermConforms.
// Include lumpy/testing/conformance.h (it says what each one checks).

#include "lumpy/testing/conformance_core.h"

namespace lumpy::testing {

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

}  // namespace lumpy::testing
