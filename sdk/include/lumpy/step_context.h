#pragma once
// StepContext: what a loss term sees during one training step.
//
// The engine draws each domain's points once per step and computes each
// jet and Geometry once; every loss term on that domain shares them.

#include <torch/torch.h>

#include "lumpy/export.h"
#include "lumpy/geometry.h"
#include "lumpy/metric_model.h"

namespace lumpy {

// Which share of a step's work this process does when one training is
// spread over several processes (`lumpy run --ranks N`, or srun): rank
// `rank` of `size`; {0, 1} in a process of its own.
struct Shard {
  int64_t rank = 0, size = 1;
};

class LUMPY_API StepContext {
 public:
  virtual ~StepContext();

  // The term's domain: collocation points [B,4] drawn for this step.
  virtual const torch::Tensor& points() = 0;
  // Geometry of the domain's points with a jet of at least `order`.
  virtual Geometry& geometry(int order) = 0;
  // Geometry at the observer's event (observer_event()), batch of one.
  virtual Geometry& observer(int order) = 0;
  virtual MetricModel& metric() = 0;
  virtual int64_t step() const = 0;
  virtual torch::TensorOptions options() const = 0;
  // A dataset term may do only its share of the work (say, its share of the
  // rays) and return that share as a partial value (LossValue::partial).
  // Point terms never need it: their domain's points are already the share.
  virtual Shard shard() const;
  // Where the observer sits: the experiment's [observer] event. Rays start
  // there (RayTracerOptions::observer). Default: kDefaultObserver.
  virtual Event observer_event() const;
};

}  // namespace lumpy
