#pragma once
// LossTerm: one term of the training loss, evaluated on a point domain.

#include <torch/torch.h>

#include <cmath>
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

// A distance dataset's Hubble diagram under a metric, for `lumpy report`:
// each object's observed and model distance modulus (NaN where the model
// gives none: beyond its rays' reach) and the model's curve mu(z) along
// labelled rays.
struct LUMPY_API HubbleDiagram {
  struct Object {
    std::string name;
    double z = 0, ra = NAN, dec = NAN;  // ra, dec NaN where the catalogue has none
    double mu_obs = 0, sigma = 0, mu_model = NAN;
    bool reached = false;
    bool held_out = false;  // never entered the training loss (held out to judge the model)
  };
  struct CurvePoint {
    std::string ray;
    double z = 0, mu = 0;
  };
  std::vector<Object> objects;
  std::vector<CurvePoint> curve;
  std::string note;  // one line for the report's log (mode, objects out of reach)
};

// Whether a term is an objective or a constraint is declared when the plugin
// is registered (Registry::AddLoss), so the core can validate the experiment
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

  // Optional capabilities, which the CLI and `lumpy report` ask for instead
  // of knowing plugins by name.
  // The column of `lumpy probe`'s and `lumpy report`'s point tables that this
  // term's per_point value fills at any points ("efe_residual" for the
  // Einstein equations' residual); "" (the default): none.
  virtual std::string probe_column() const;
  // The term's Hubble diagram under `metric` (distance datasets); the
  // default is an Unimplemented error: the term has none.
  virtual absl::StatusOr<HubbleDiagram> hubble_diagram(MetricModel& metric, const torch::TensorOptions& options);
};

}  // namespace lumpy
