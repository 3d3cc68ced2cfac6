#pragma once
// The ray tracer's right-hand side: dy/dl of the ray states y [R,D] (D = 8:
// x^mu, k^mu; D = 24: also the Jacobi map's xi_1, dxi_1/dl, xi_2, dxi_2/dl)
// from the metric's jet at x. With dg[i,j,k] = d_k g_ij, d2g[i,j,k,l] =
// d_k d_l g_ij and L_d = Gamma_dbc k^b k^c:
//   L_d = (d_k g_dc) k^k k^c - 1/2 k^b k^c d_d g_bc,      dk/dl = -g^-1 L;
//   2 Gamma_dbc k^b eta^c = C_dc eta^c,
//     C_dc = (d_k g_dc) k^k + d_c g_db k^b - k^b d_d g_bc;
//   d_e Gamma^a_bc k^b k^c = g^am (d_e g_mn acc^n + P_me - 1/2 Q_me),
//     P_me = d_e d_b g_mc k^b k^c,  Q_me = d_m d_e g_bc k^b k^c;
//   d2 xi/dl2 = -g^-1 [(dg acc + P - Q/2) xi + C eta].
// The integrator passes live rays only (stopped rays leave its batch).
//
// Two implementations of the same formulas:
//   GeodesicRhsOps: batched tensor operations under autograd (any device,
//     any order of differentiation; the oracle).
//   GeodesicRhsFused: one loop over rays (CPU, float32/float64; computed in
//     float64) and one autograd node whose adjoint is written out by hand.
//     The 4x4 inverse is the cofactor formula: a singular metric gives a
//     non-finite dy (which the integrator stops), not an exception. A ray
//     batch is a few dozen rays, so each operation LibTorch dispatches costs
//     more than its arithmetic: this is 1 node where the tensor form is ~40.

#include <torch/torch.h>

#include "engine_export.h"
#include "lumpy/jet.h"
#include "lumpy/metric_model.h"

namespace lumpy {

// Jet order >= 1 (>= 2 for D = 24).
LUMPY_ENGINE_API torch::Tensor GeodesicRhsOps(const torch::Tensor& y, const Jet& jet);
LUMPY_ENGINE_API torch::Tensor GeodesicRhsFused(const torch::Tensor& y, const Jet& jet);
// Whether the ray tracer's fused CPU paths run on states like y: asked for,
// on the CPU, float32/float64.
LUMPY_ENGINE_API bool RayFusedApplies(const torch::Tensor& y, bool fused);

// dy with the rows of rays that are not alive ([R] bool) set to 0.
LUMPY_ENGINE_API torch::Tensor FreezeRays(const torch::Tensor& dy, const torch::Tensor& alive);

// The fused node where asked and where it applies (RayFusedApplies), else
// the tensor form.
LUMPY_ENGINE_API torch::Tensor GeodesicRhs(const torch::Tensor& y, const Jet& jet, bool fused);

}  // namespace lumpy

namespace lumpy::ray {

// State layout per ray: x^mu (0..3), k^mu (4..7); with the Jacobi map also
// xi_1 (8..11), dxi_1/dl (12..15), xi_2 (16..19), dxi_2/dl (20..23).
inline constexpr int64_t kJacobi = 24;

struct Rhs {
  torch::Tensor dy;  // [R,D]
  torch::Tensor g;   // [R,4,4] at the state
  torch::Tensor dg;  // [R,4,4,4] at the state
};

// dy/dl at the states y (geodesic_rhs.h has the formulas); rays not alive
// ([R] bool, or undefined: all) get dy = 0, and g = dg = 0. The metric is
// evaluated at the live rays only: once rays stop (their targets passed, or
// a singularity met) the batch the jet sees shrinks with them. x: the
// positions y[:, 0:4] where the caller has them as a tensor of their own.
Rhs Derivative(MetricModel& metric, const torch::Tensor& y, bool fused,
               const torch::Tensor& alive = {}, const torch::Tensor& x = {});

}  // namespace lumpy::ray
