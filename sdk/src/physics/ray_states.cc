#include "physics/ray_states.h"

namespace lumpy {

namespace {
thread_local RayStateRecorder* current = nullptr;

torch::Tensor Cat(const std::vector<torch::Tensor>& parts) {
  return parts.empty() ? torch::Tensor() : torch::cat(parts, 0);
}
}  // namespace

RayStateRecorder::RayStateRecorder() : previous_(current) { current = this; }

RayStateRecorder::~RayStateRecorder() { current = previous_; }

RayPositions RayStateRecorder::positions() const { return {Cat(segments_), Cat(bad_)}; }

bool RayStateRecorder::Active() { return current != nullptr; }

void RayStateRecorder::Record(const torch::Tensor& segments, const torch::Tensor& bad) {
  if (current == nullptr) return;
  auto keep = [](const torch::Tensor& x, std::vector<torch::Tensor>& into) {
    if (x.defined() && x.size(0) > 0) into.push_back(x.detach().to(torch::kCPU, torch::kFloat64).contiguous());
  };
  keep(segments, current->segments_);
  // A state that stopped a ray for being non-finite may be non-finite itself.
  if (bad.defined() && bad.size(0) > 0) keep(bad.index({torch::isfinite(bad).all(1)}), current->bad_);
}

}  // namespace lumpy
