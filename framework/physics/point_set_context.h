#pragma once
// The engine's StepContext: one point set (a domain's draw, or fixed points
// for tests and probes) over one metric. The jet and Geometry of the points
// are computed on first use and shared by every term that asks; the
// observer's Geometry lives in a slot that all contexts of one step share.

#include <memory>

#include "engine_export.h"
#include "lumpy/step_context.h"

namespace lumpy {

class LUMPY_ENGINE_API PointSetContext final : public StepContext {
 public:
  // `observer_slot` may be null: the context then keeps its own. The
  // observer sits at `observer` (the experiment's [observer] event).
  PointSetContext(MetricModel& model, torch::Tensor points,
                  std::unique_ptr<Geometry>* observer_slot = nullptr, int64_t step = 0, Shard shard = {},
                  Event observer = kDefaultObserver);

  const torch::Tensor& points() override { return points_; }
  Geometry& geometry(int order) override;
  Geometry& observer(int order) override;
  MetricModel& metric() override { return model_; }
  int64_t step() const override { return step_; }
  torch::TensorOptions options() const override { return points_.options(); }
  Shard shard() const override { return shard_; }
  Event observer_event() const override { return observer_event_; }

 private:
  MetricModel& model_;
  torch::Tensor points_;
  std::unique_ptr<Geometry> geometry_;
  std::unique_ptr<Geometry> own_observer_;
  std::unique_ptr<Geometry>* observer_;
  int64_t step_;
  Shard shard_;
  Event observer_event_;
};

}  // namespace lumpy
