#pragma once
// CurriculumWeighter: attached to a point domain; maps the domain's summed
// per-point loss to one scalar (uniform mean, learned spatial weights, causal
// time slices, ...).
//
// The engine calls, in order: set_bounds() once, when the experiment's
// components are built (before a resumed run's state is restored); then every
// step reduce() on the step's points, and update() after the optimizer step.
// State that update() changes lives in registered buffers or parameters
// (module_state.h), so that a resumed run goes on as the unbroken one; the
// conformance kit checks it.

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lumpy/export.h"

namespace lumpy {

// The box a domain draws its points from, per coordinate (t, x, y, z): t
// spans its strata (from the earliest t_min to the latest t_max; -inf..+inf
// for a domain of ray points only), x, y, z its intervals.
struct DomainBounds {
  std::array<double, 4> lo{}, hi{};
};

class LUMPY_API CurriculumWeighter : public torch::nn::Module {
 public:
  ~CurriculumWeighter() override;

  // The domain's box. A curriculum that slices the domain (in time, in
  // radius) takes its edges from here, never from a copy of the experiment's
  // numbers that would go stale when the domain changes. Default: nothing.
  virtual void set_bounds(const DomainBounds& bounds);

  // points [B,4], per_point_loss [B] -> scalar. Changes no state: that is
  // update()'s. Over several processes each reduces its own share of the
  // step's points (a contiguous run of the draw) and the shares' results
  // are added weighted by their sizes: exact for a mean over points of a
  // per-point function (the built-ins), not for a reduction that couples
  // points (causal slices); train such a curriculum on one process.
  virtual torch::Tensor reduce(const torch::Tensor& points,
                               const torch::Tensor& per_point_loss) = 0;

  // After the optimizer step of step `step`, with the points and per-point
  // loss that reduce() saw (detached; over several processes, the whole
  // step's, the same on every one): anneal a parameter, move a schedule.
  // Default: nothing.
  virtual void update(const torch::Tensor& points, const torch::Tensor& per_point_loss, int64_t step);

  // Named scalars for metrics.csv (e.g. the mean weight).
  virtual std::vector<std::pair<std::string, double>> telemetry() const;
};

}  // namespace lumpy
