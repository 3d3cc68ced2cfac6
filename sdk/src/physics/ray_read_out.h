#pragma once
// Pieces of the ray tracer's read-out that tests exercise on their own.

#include <torch/torch.h>

#include "engine_export.h"
#include "lumpy/ray_tracer.h"
#include "physics/ray_integrator.h"
#include "physics/ray_observables.h"

namespace lumpy {

// jnp.interp(x, xp, fp) (JAX's linear interpolation): for each x, the
// interval (xp[i-1], xp[i]) with i = jnp.searchsorted(xp, x, side='right')
// as JAX computes it (a fixed-length binary search: on unsorted xp its own
// answer, which std::upper_bound does not give), clipped to [1, n-1]; fp[i-1] where the interval's
// width is below np.spacing(eps); fp[0] below xp[0] and fp[n-1] above
// xp[n-1]. Differentiable in x, xp and fp; the interval is chosen on
// detached values.
LUMPY_ENGINE_API torch::Tensor InterpLikeJax(const torch::Tensor& x, const torch::Tensor& xp,
                                             const torch::Tensor& fp);

// The reference's rule for a ray sampled at `samples` points of which the
// first z.size(0) are valid (the rest lay past the ray's end): the invalid
// ones take the largest valid z and the largest valid d; each target's d is
// InterpLikeJax in z, plus 10 (target - z_max) where the target lies beyond
// z_max (geodesics.py@0bd4b52:203-262). d in units of 1000 Mpc.
LUMPY_ENGINE_API torch::Tensor ReferenceDistances(const torch::Tensor& z, const torch::Tensor& d,
                                                  int64_t samples, const torch::Tensor& target);

}  // namespace lumpy

namespace lumpy::ray {

// The exact read-out: each target at its first crossing on the dense output
// (Crossings), then one differentiable Newton step for the crossing's exact
// first-order gradient. Target i is read off ray ray_of[i] at z_target[i].
SkyDistances ReadOff(MetricModel& metric, const Paths& p, const Redshift& redshift,
                     const torch::Tensor& ray_of, const torch::Tensor& z_target,
                     const torch::TensorOptions& options, const RayTracerOptions& o);

// The reference implementation's read-out (geodesics.py@0bd4b52:192-262) of
// the reference ray: samples at `saved_points` affine parameters, then
// ReferenceDistances.
SkyDistances ReadOffReference(MetricModel& metric, const Paths& p, const Redshift& redshift,
                              const torch::Tensor& z_target, const torch::TensorOptions& options,
                              const RayTracerOptions& o, int64_t saved_points);

}  // namespace lumpy::ray
