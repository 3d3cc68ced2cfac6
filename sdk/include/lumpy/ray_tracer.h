#pragma once
// Null geodesics through a metric model, batched and differentiable.
//
// All rays of a call form one ODE state, integrated in the affine parameter
// lambda from 0 down to lambda_end by the embedded Dormand-Prince 5(4) pair
// with one step size for the batch (error control over every live ray and
// component):
//   dx/dl = k,  dk^a/dl = -Gamma^a_bc k^b k^c,
// and in physical mode also the Jacobi map: two deviation vectors xi_A with
// xi_A(0) = 0, dxi_A/dl(0) = s_A (the observer's screen), obeying the
// geodesic deviation equation in coordinates (the linearised geodesic
// equation; its curvature term is the Riemann tensor along the ray):
//   d2 xi^a/dl2 = -d_e Gamma^a_bc k^b k^c xi^e - 2 Gamma^a_bc k^b dxi^c/dl.
// The accepted steps keep the autograd graph to the model's parameters; step
// sizes and stopping decisions are made on detached values. Between accepted
// steps the path is Dormand-Prince's 4th-order dense output (the cubic Hermite
// interpolant of (y, dy/dl) plus a correction from the step's stages), as
// accurate as the steps themselves; it is how quantities are read off at a
// redshift: a bracketed secant on detached values, then one differentiable
// Newton step (the exact first-order gradient). The read-out's graph holds
// only the steps up to the last state it reads (the backward pass skips the
// rest).
//
// Each ray stops on its own, for a reason counted in RayStop: its redshift
// passed its stop, t < t_min, lambda reached lambda_end, its state became
// non-finite, the metric along it stopped being Lorentzian (det g >= 0 or the
// spatial metric not positive definite), the step size it needs collapsed
// (below 1e-9 of the affine range: a singularity ahead), or the step budget
// ran out. A
// stopped ray is frozen at its last good state; nothing non-finite reaches
// the outputs (targets a ray never reached are flagged, not NaN).
//
// Every ray starts at the observer's event, RayTracerOptions::observer
// (default (1,0,0,0)).
//
// Reference mode (docs/physics.md, "Light rays and observables"): one ray from the observer
// with k = (1, sqrt(|g00|/|g11|), 0, 0); 1 + z = (u.k)_src/(u.k)_obs with
// u_mu = (-sqrt|g00|, 0, 0, 0); d_L = (1+z) |x - x_obs| x 1000 Mpc (the
// coordinate distance from the observer's position).
//
// Physical mode: rays along sky directions n (unit 3-vectors in the observer's
// orthonormal frame: e_0 = u, e_i from Gram-Schmidt of d_x, d_y, d_z
// orthogonal to u), k_obs = u - n^i e_i (so u.k = -1); observers and sources
// comoving with the coordinates, u^mu = (1/sqrt(-g00), 0, 0, 0); D_A^2 =
// sqrt(det G), G_AB = g(xi_A, xi_B) (the bundle's cross-section per unit solid
// angle); d_L = (1+z)^2 D_A.

#include <torch/torch.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "lumpy/export.h"
#include "lumpy/metric_model.h"

namespace lumpy {

struct RayTracerOptions {
  // Error control per vector: |err| <= atol + rtol |v| for each component of
  // the vectors v = t, spatial x, k^0, spatial k, and each Jacobi vector and
  // its derivative (|v|: largest component). In float32 these are floored at
  // rtol 1e-6, atol 1e-8 (rounding noise sits just below).
  double rtol = 1e-9;
  double atol = 1e-12;
  double lambda_end = -10.0;  // the affine parameter runs from 0 down to this
  double t_min = -5.0;        // stop once t < t_min
  double z_stop = 2.5;        // stop once z > max(z_stop, largest target of the ray + z_margin)
  // The reference's 0.2 past the farthest target. 0 is enough for the exact
  // read-out (a target is read at its first crossing, which the ray has made
  // once its z passed it): physical-mode terms use 0, and save the steps.
  double z_margin = 0.2;
  // |initial step|; 0: automatic, T rtol^(1/5) with T the affine time over
  // which the rays' momenta change (|k| / |dk/dl| at the observer).
  double first_step = 0.0;
  int64_t max_steps = 20000;  // accepted + rejected
  bool hubble_distance = false;  // also read off D_H = c / H_parallel at each target
  // The right-hand side as one fused node on the CPU (first-order gradients);
  // false: tensor operations, differentiable to any order (create_graph).
  bool fused = true;
  // Stop a ray where the metric along it stops being Lorentzian (det g >= 0
  // or the spatial metric not positive definite). The reference never
  // checked: its rays went on until their state was not finite.
  bool stop_non_lorentzian = true;
  // Where the rays start: the observer's event (t, x, y, z). A loss term
  // sets it from StepContext::observer_event().
  Event observer = kDefaultObserver;
};

// How the rays of a call ended.
struct LUMPY_API RayStop {
  // Per ray: "redshift", "time", "affine", "non-finite", "non-lorentzian",
  // "singular", "steps".
  std::vector<std::string> reasons;
  // Every ray that stopped on a bad state (non-finite, non-lorentzian,
  // singular), with where: the state it could not go past (for a stop
  // because the step size collapsed, singular or non-finite error, the last
  // state it reached, whose metric may still look healthy), its affine
  // parameter, and the metric's four eigenvalues there, ascending (NaN where
  // not finite). A Lorentzian
  // metric has exactly one negative eigenvalue.
  struct Bad {
    int64_t ray = -1;
    std::string reason;
    double lambda = 0;
    std::array<double, 4> x{};
    std::array<double, 4> eigenvalues{};
  };
  std::vector<Bad> bad;
  int64_t accepted = 0, rejected = 0;  // integrator steps of the batch
  int64_t Count(const std::string& reason) const;
  std::string Summary() const;  // e.g. "redshift: 47, time: 1"
};

// Distances read off the rays at the targets' redshifts. Lengths in Mpc, in the
// model's dtype; 0 where a target was not reached.
struct LUMPY_API SkyDistances {
  torch::Tensor luminosity_distance;  // [N] d_L
  torch::Tensor angular_distance;     // [N] D_A (reference mode: d_L / (1+z)^2)
  torch::Tensor hubble_distance;      // [N] D_H = -(1+z)^2 E_obs / (dz/dl); only if asked
  torch::Tensor reached;              // [N] bool
  torch::Tensor source;               // [N,8] x^mu, k^mu where each target was read off (0 if not)
  torch::Tensor z_max;                // [R] the largest redshift each ray reached (differentiable)
  RayStop stop;
};

// Reference mode: luminosity distances at redshifts z [N] (any order, > 0).
// The reference implementation's read-out of its one ray, to run the posts'
// code as it ran (docs/physics.md, "Light rays and observables"): the ray
// sampled at `saved_points` affine parameters evenly spaced over
// [0, lambda_end] and nowhere else; samples past the ray's end take the
// largest z and d found; each target's d_L is the linear interpolation in z
// (clamped at the ends, as jnp.interp), plus 10 (z_target - z_max) x 1000
// Mpc for a target beyond the largest sampled z; every target gets a
// distance. Without it, each target is read at its exact crossing on the
// dense output.
struct ReferenceReadOut {
  int64_t saved_points = 50;
};

LUMPY_API SkyDistances TraceReference(MetricModel& metric, const torch::Tensor& z,
                                      const torch::TensorOptions& options,
                                      const RayTracerOptions& tracer = {},
                                      std::optional<ReferenceReadOut> as_posted = std::nullopt);

// Physical mode: rays along directions [R,3] (unit vectors in the observer's
// frame); target i is read off ray ray_of[i] (int64 [N]) at redshift z[i].
LUMPY_API SkyDistances TraceSky(MetricModel& metric, const torch::Tensor& directions,
                                const torch::Tensor& ray_of, const torch::Tensor& z,
                                const torch::TensorOptions& options,
                                const RayTracerOptions& tracer = {});

// x = (cos dec cos ra, cos dec sin ra, sin dec) from degrees, [N] -> [N,3] float64.
LUMPY_API torch::Tensor SkyDirections(const torch::Tensor& ra_deg, const torch::Tensor& dec_deg);

// n directions covering the sphere evenly (a Fibonacci lattice), [n,3] float64.
LUMPY_API torch::Tensor DirectionBins(int64_t n);

// The index of the nearest bin (largest dot product) for each direction: [N] int64.
LUMPY_API torch::Tensor NearestBin(const torch::Tensor& directions, const torch::Tensor& bins);

}  // namespace lumpy
