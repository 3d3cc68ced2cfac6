#pragma once
// What a ray's state says about its source: the redshift convention of each
// mode, 1 + z and its rate along the ray, and the distances d_L, D_A and D_H
// (docs/physics.md, "Light rays and observables").

#include <torch/torch.h>

#include "engine_export.h"
#include "lumpy/metric_model.h"

namespace lumpy::ray {

// The redshift convention of a mode: 1 + z = F(g, k) with F = 1 at the observer.
struct Redshift {
  bool physical = false;
  torch::Tensor e_obs;   // reference mode: (u.k) at the observer, sqrt|g00| k^0 (0-dim)
  torch::Tensor origin;  // reference mode: the observer's position (x, y, z) [3]
  // Reference mode's coordinate distance from the observer, |x - x_obs|, at
  // states s [N, >= 4] (0 at the observer, with a finite gradient there);
  // `soft`: sqrt(|x - x_obs|^2 + soft), the reference read-out's.
  torch::Tensor CoordinateDistance(const torch::Tensor& s, double soft = 0.0) const;
  // 1 + z at states with metric g [N,4,4] and momentum k [N,4].
  torch::Tensor operator()(const torch::Tensor& g, const torch::Tensor& k) const;
  // d(1+z)/dl along the geodesic, from g, its derivatives dg [N,i,j,rho] =
  // d_rho g_ij, k and dk/dl at the states.
  torch::Tensor Rate(const torch::Tensor& g, const torch::Tensor& dg, const torch::Tensor& k,
                     const torch::Tensor& kdot) const;
};

// What a mode reads off a state: 1 + z, d_L and D_A (Mpc).
struct Observables {
  torch::Tensor one_plus_z, luminosity, angular;
};

// sqrt(x) for x >= 0 whose gradient at 0 is 0 rather than 0 * inf = NaN:
// distances are read off at the observer itself (the first saved point).
torch::Tensor SqrtOrZero(const torch::Tensor& x);

// The cross-section of the bundle per unit solid angle at states s [N,24]
// with metric g [N,4,4] there, D_A^2 (units of (1000 Mpc)^2): the area that
// the two Jacobi vectors span on the comoving source's screen.
LUMPY_ENGINE_API torch::Tensor BundleArea(const torch::Tensor& s, const torch::Tensor& g);

// 1 + z, d_L and D_A at states s [N, D] with metric g [N,4,4] there; in
// physical mode D_A^2 = sqrt(det G), G_AB = g(xi_A, xi_B).
Observables Observe(const torch::Tensor& s, const torch::Tensor& g, const Redshift& redshift);

// D_H = -(1+z)^2 E_obs / (d(1+z)/dl), the distance c/H along the line of
// sight (for FLRW d(1+z)/dl = -H (1+z)^2 E_obs), in Mpc.
torch::Tensor HubbleDistance(MetricModel& metric, const torch::Tensor& s, const Redshift& redshift,
                             bool fused);

// z at states s [N, >= 8] (x^mu, k^mu first), with graph.
torch::Tensor RedshiftAt(MetricModel& metric, const torch::Tensor& s, const Redshift& redshift);

}  // namespace lumpy::ray
