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

#include "lumpy/testing/conformance_core.h"       // UniformPoints and shared helpers
#include "lumpy/testing/conformance_metric.h"     // ExpectMetricConforms
#include "lumpy/testing/conformance_handler.h"    // ExpectHandlerConforms
#include "lumpy/testing/conformance_loss.h"       // ExpectLossTermConforms
#include "lumpy/testing/conformance_curriculum.h" // ExpectCurriculumConforms
