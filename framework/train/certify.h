#pragma once
// Held-out certification: every constraint term and the Ricci scalar on a
// dense, deterministic grid that training never samples, then a search
// between the grid points. The blog's part 3 read a training WEC loss of
// exactly zero while R dipped to -0.006 between its training points; this is
// where a user sees that.
//
// What it is and is not: the grid minimum is R's lowest value at the grid
// points; the refined minimum is the lowest value a bounded descent found
// (it never lies above the grid minimum). Both are values found, not bounds:
// a dip narrower than the grid spacing that no start leads into can still be
// missed. The only bound reported is an estimate (see `Certify`).

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "config/experiment.h"
#include "engine_export.h"

namespace lumpy {

// The grid over the domain's box and t range (the union of its strata),
// through its faces, edges and corners (so also the latest time slice, today
// for the blog's domains): n_x = n_y = n_z = floor(points^(1/4)) nodes from
// min to max inclusive, n_t = round(points / n_x^3). [n_t*n_x^3, 4], t
// slowest.
LUMPY_ENGINE_API torch::Tensor HeldOutGrid(const DomainSpec& domain, int64_t points,
                                           const torch::TensorOptions& options);

struct CertifyOptions {
  int64_t refine_worst = 16;   // descents from the K lowest grid values
  int64_t refine_random = 16;  // and from M random points of the box
  int64_t iterations = 60;     // per descent
  uint64_t seed = 0;           // of the random starts (a generator of its own)
};
LUMPY_ENGINE_API CertifyOptions CertifyOptionsOf(const Experiment& experiment);

// Minimises f over the box [lo, hi] (each [4]) from the rows of `starts`
// [S,4] by projected gradient descent with central-difference gradients and
// a step that doubles after every accepted step and shrinks by 4 after a
// rejected one (a step is accepted on sufficient decrease). f maps [N,4]
// points to [N] values; everything in float64.
struct DescentResult {
  double value = INFINITY;
  std::vector<double> at;    // [4]
  int64_t evaluations = 0;   // points f was evaluated at
  double max_gradient = 0;   // the largest |grad f| met (an estimate of f's Lipschitz constant)
};
LUMPY_ENGINE_API DescentResult Descend(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                       const torch::Tensor& starts, const torch::Tensor& lo,
                                       const torch::Tensor& hi, int64_t iterations);

// For every domain that carries a constraint term: the grid size; min R and
// where; per constraint term the max and mean violation and where the max
// is; and under "refined", what the descents found (min R, each constraint's
// max violation, where, how many evaluations) with an estimated lower bound
// on R, grid min R - L d/2 (L: the largest |grad R| the descents met, d: a
// grid cell's diagonal), which holds only if L bounds |grad R| everywhere
// (it is an estimate, not a proof). The model is evaluated in float64 (and
// put back in its own dtype), without gradients, the grid in chunks of
// `chunk` points.
LUMPY_ENGINE_API nlohmann::json Certify(Components& components, int64_t points,
                                        const torch::TensorOptions& options,
                                        const CertifyOptions& certify = {}, int64_t chunk = 2048);

// One line per domain for the terminal.
LUMPY_ENGINE_API std::vector<std::string> CertificateLines(const nlohmann::json& certificate);

}  // namespace lumpy
