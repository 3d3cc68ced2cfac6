#pragma once
// Pieces of the ray tracer's read-out that tests exercise on their own.

#include <torch/torch.h>

#include "engine_export.h"

namespace lumpy {

// The weight of the upper point when interpolating linearly in z between
// (za, d_a) and (zb, d_b) at `target`: (target - za)/(zb - za) clamped to
// [0, 1], and 0 where the two redshifts coincide (a ray stopped at a saved
// point repeats it). Finite in value and gradient everywhere: a 0/0 in the
// forward pass would otherwise become NaN in the backward pass even where
// the value is masked.
LUMPY_ENGINE_API torch::Tensor LinearWeight(const torch::Tensor& target, const torch::Tensor& za,
                                            const torch::Tensor& zb);

}  // namespace lumpy
