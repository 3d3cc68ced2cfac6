#pragma once
// The Ricci kernel choice behind Geometry::ricci() (lumpy/geometry.h). Not
// installed: plugins ask a Geometry for ricci(); the engine and the tests
// call the kernels directly.

#include <torch/torch.h>

#include "engine_export.h"

namespace lumpy {

// The Ricci tensor from the inverse metric and the jet,
//   R_mn = d_r G^r_mn - d_n G^r_mr + G^r_mn G^s_rs - G^s_mr G^r_ns,
// with both derivative terms contracted from g^-1, dg, d2g directly.
// ginv [B,4,4], dg [B,4,4,4], d2g [B,4,4,4,4] -> [B,4,4].
//   RicciTensorOps: tensor operations under autograd (any device, any order).
//   RicciFused: one loop per point (CPU, float32/float64) and one autograd
//     node with a hand-written backward (first order only); about 10x fewer
//     operations to dispatch and no [B,4,4,4,4] intermediates.
// Geometry::ricci() uses the fused kernel where it applies.
LUMPY_ENGINE_API torch::Tensor RicciTensorOps(const torch::Tensor& ginv, const torch::Tensor& dg,
                                              const torch::Tensor& d2g);
LUMPY_ENGINE_API torch::Tensor RicciFused(const torch::Tensor& ginv, const torch::Tensor& dg,
                                          const torch::Tensor& d2g);
LUMPY_ENGINE_API bool RicciFusedApplies(const torch::Tensor& ginv);

}  // namespace lumpy
