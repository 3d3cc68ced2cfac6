#pragma once
// A step context for dataset terms (no points, no geometry) on a given
// metric, with the observer where a test puts it.

#include <stdexcept>

#include "lumpy/lumpy.h"

namespace lumpy::testing {

struct DatasetContext : StepContext {
  MetricModel* m = nullptr;
  Event at = kDefaultObserver;  // observer_event()
  torch::Tensor pts = torch::zeros({0, 4}, torch::kFloat64);
  const torch::Tensor& points() override { return pts; }
  Geometry& geometry(int) override { throw std::logic_error("a dataset term has no points"); }
  Geometry& observer(int) override { throw std::logic_error("unused by dataset terms"); }
  MetricModel& metric() override { return *m; }
  int64_t step() const override { return 0; }
  torch::TensorOptions options() const override { return torch::kFloat64; }
  Event observer_event() const override { return at; }
};

}  // namespace lumpy::testing
