#include "physics/point_set_context.h"

namespace lumpy {

PointSetContext::PointSetContext(MetricModel& model, torch::Tensor points,
                                 std::unique_ptr<Geometry>* observer_slot, int64_t step, Shard shard,
                                 Event observer)
    : model_(model),
      points_(std::move(points)),
      observer_(observer_slot ? observer_slot : &own_observer_),
      step_(step),
      shard_(shard),
      observer_event_(observer) {}

Geometry& PointSetContext::geometry(int order) {
  if (!geometry_) {
    geometry_ = std::make_unique<Geometry>(model_.jet(points_, order));
  } else if (geometry_->order() < order) {
    geometry_->Extend(model_.jet(points_, order));
  }
  return *geometry_;
}

Geometry& PointSetContext::observer(int order) {
  if (!*observer_ || (*observer_)->order() < order) {
    auto x = EventPoint(observer_event_, points_.options());
    if (!*observer_) {
      *observer_ = std::make_unique<Geometry>(model_.jet(x, order));
    } else {
      (*observer_)->Extend(model_.jet(x, order));
    }
  }
  return **observer_;
}

}  // namespace lumpy
