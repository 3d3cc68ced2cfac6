#pragma once
// Each step's collocation points.

#include <torch/torch.h>

#include "config/experiment.h"
#include "engine_export.h"
#include "physics/ray_states.h"

namespace lumpy {

// Draws the domain's points for one step from the global generator: every
// stratum uniform in its t range and the domain's box, then the domain's
// ray_points: first the bad states rays stopped on, the rest uniform along
// the rays' segments (the observer's event while no ray was traced). [N,4].
LUMPY_ENGINE_API torch::Tensor SamplePoints(const DomainSpec& domain, const torch::TensorOptions& options,
                                            const RayPositions& rays = {},
                                            const Event& observer = kDefaultObserver);

}  // namespace lumpy
