#pragma once
// The adaptive integration of a batch of rays (ray_tracer.h describes it):
// Dormand-Prince 5(4) with one step size for the batch, each ray stopping on
// its own for a reason counted in RayStop, and the saved path that the
// read-out interpolates.

#include <torch/torch.h>

#include <vector>

#include "lumpy/metric_model.h"
#include "lumpy/ray_tracer.h"
#include "physics/ray_observables.h"

namespace lumpy::ray {

// The integrated paths of all rays: S saved states (with graph).
struct Paths {
  std::vector<torch::Tensor> y, f;  // S x [R,D]: the states and dy/dl there
  std::vector<torch::Tensor> g, dg;  // S x [R,4,4], [R,4,4,4]: the metric and its derivatives
                                     // there (detached; 0 for rays stopped before)
  std::vector<torch::Tensor> c;     // S x [R,D]: the dense output's correction of the step
                                    // ending at each state (0 at the first)
  std::vector<double> lambda;       // [S]
  std::vector<std::vector<double>> z;  // [S][R] detached redshifts
  std::vector<int64_t> last;        // per ray: the last saved index valid for read-out
  RayStop stop;
};

// Integrates the states y [R,D] from lambda = 0 towards o.lambda_end; ray r
// stops once its z passes z_stop[r] (or for one of RayStop's other reasons).
Paths Integrate(MetricModel& metric, torch::Tensor y, const Redshift& redshift, const std::vector<double>& z_stop,
                const RayTracerOptions& o);

}  // namespace lumpy::ray
