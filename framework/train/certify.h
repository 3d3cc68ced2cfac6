#pragma once
// Held-out certification: every constraint term and the Ricci scalar on a
// fresh, dense, deterministic grid that training never samples. The blog's
// part 3 read a training WEC loss of exactly zero while R dipped to -0.006
// between its training points; this is where a user sees that.

#include <nlohmann/json.hpp>

#include "config/experiment.h"
#include "engine_export.h"

namespace lumpy {

// The cell-centred grid over the domain's box and t range (the union of its
// strata): n_x = n_y = n_z = floor(points^(1/4)), n_t = round(points / n_x^3).
// [n_t*n_x^3, 4], t slowest.
LUMPY_ENGINE_API torch::Tensor HeldOutGrid(const DomainSpec& domain, int64_t points,
                                           const torch::TensorOptions& options);

// For every domain that carries a constraint term: the grid size, min R (and
// where), and per constraint term the max and mean violation (and where the
// max is). Evaluated without gradients in chunks of `chunk` points.
LUMPY_ENGINE_API nlohmann::json Certify(Components& components, int64_t points,
                                        const torch::TensorOptions& options,
                                        int64_t chunk = 2048);

}  // namespace lumpy
