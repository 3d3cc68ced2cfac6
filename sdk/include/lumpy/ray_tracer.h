#pragma once
// Null geodesics through a metric model, batched and differentiable.
//
// All rays of a call form one ODE state y = (x^mu, k^mu) [R,8] in the affine
// parameter lambda:  dx/dl = k,  dk^a/dl = -Gamma^a_bc k^b k^c,  integrated by
// the embedded Dormand-Prince 5(4) pair with one step size for the batch
// (error control over every ray and component). The accepted steps keep the
// autograd graph to the model's parameters; step sizes and stopping
// decisions are made on detached values. Between accepted steps the path is
// the cubic Hermite interpolant of (y, dy/dl), which is how quantities are
// read off at a given redshift.
//
// Reference mode (PHYSICS.md, "Observables"): one ray from the observer at
// (1,0,0,0) with k = (1, sqrt(|g00|/|g11|), 0, 0), lambda from 0 down to
// lambda_end, stopped when the state is not finite, t < t_min, or
// z > max(z_stop, z_target_max + 0.2); 1 + z = (u.k)_src / (u.k)_obs with
// u_mu = (-sqrt|g00|, 0, 0, 0); d_L = (1+z) sqrt(x^2+y^2+z^2) x 1000 Mpc.

#include <torch/torch.h>

#include <string>

#include "lumpy/export.h"
#include "lumpy/metric_model.h"

namespace lumpy {

struct RayTracerOptions {
  double rtol = 1e-9;
  double atol = 1e-12;
  double lambda_end = -10.0;  // the affine parameter runs from 0 down to this
  double t_min = -5.0;        // stop once t < t_min
  double z_stop = 2.5;        // stop once z > max(z_stop, largest target + 0.2)
  double first_step = 1e-3;   // |initial step|
  int64_t max_steps = 20000;  // accepted + rejected
};

// Where a path ended and why.
struct LUMPY_API RayStop {
  std::string reason;  // "redshift", "time", "affine", "non-finite", "steps"
  int64_t accepted = 0, rejected = 0;
};

// Distances read off one reference ray at the targets' redshifts.
struct LUMPY_API ReferenceDistances {
  torch::Tensor luminosity_distance;  // [N] Mpc, model dtype; 0 where not reached
  torch::Tensor reached;              // [N] bool
  torch::Tensor z_max;                // 0-dim: the largest redshift reached (differentiable)
  RayStop stop;
};

// Reference-mode luminosity distances at redshifts z [N] (any order, > 0).
LUMPY_API ReferenceDistances TraceReference(MetricModel& metric, const torch::Tensor& z,
                                            const torch::TensorOptions& options,
                                            const RayTracerOptions& tracer = {});

}  // namespace lumpy
