#pragma once
// LossTerm: one term of the training loss, evaluated on a point domain.

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

#include "lumpy/export.h"
#include "lumpy/metric_model.h"
#include "lumpy/physical_parameter.h"
#include "lumpy/step_context.h"

namespace lumpy {

enum class LossKind {
  kObjective,   // per point on a domain, minimised, scaled by the entry's `weight`
  kConstraint,  // a violation v >= 0 per point, penalised by a ConstraintHandler
  kDataset,     // one value per step from a dataset (supernovae, BAO): no domain,
                // no per-point values; scaled by `weight`, past every curriculum
};

// per_point: [B], the objective value or violation at each of the domain's
// points; the domain's curriculum reduces it. A dataset term (LossKind::
// kDataset: supernovae, BAO) is evaluated on an empty point set and leaves it
// undefined: its value enters the loss directly, times the entry's weight.
struct LUMPY_API LossValue {
  torch::Tensor per_point;  // [B], or undefined for a dataset term
  torch::Tensor value;      // scalar: the term (the mean for point terms)
  // A dataset term that did only its shard's share of the work
  // (StepContext::shard()) sets this: `value` is that share, and the term is
  // the sum of every rank's share (so must its gradient be). false: `value`
  // is the whole term, which every rank then computes alike.
  bool partial = false;
};

// Whether a term is an objective, a constraint or a dataset term is declared
// when the plugin is registered (Registry::AddLoss), so the core can validate the experiment
// (a constraint needs a handler) before constructing anything.
class LUMPY_API LossTerm {
 public:
  virtual ~LossTerm();
  virtual LossValue evaluate(StepContext& context) = 0;
  // Trainable physical scalars the term owns (e.g. Omega_m of the dust).
  virtual std::vector<PhysicalParameter> physical_parameters();
  // Diagnostics of the last evaluate() for metrics.csv (e.g. how many rays
  // stopped and why), as name/value pairs. The names must be the same from
  // construction on: the trainer reads them once for the header.
  virtual std::vector<std::pair<std::string, double>> telemetry() const;
  // What `lumpy report`, `probe` and `sky` may also ask of a term is not
  // here: a term that has more to show implements an interface of
  // lumpy/report.h as well.
};

}  // namespace lumpy
