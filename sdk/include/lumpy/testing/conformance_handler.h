#pragma once
// The conformance checks of constraint handlers (constraint_handler.h): ExpectHandlerConforms.
// Include lumpy/testing/conformance.h (it says what each one checks).

#include "lumpy/testing/conformance_core.h"

namespace lumpy::testing {

using HandlerFactory = std::function<std::shared_ptr<ConstraintHandler>()>;

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

}  // namespace lumpy::testing
