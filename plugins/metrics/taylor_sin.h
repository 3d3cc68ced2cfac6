#pragma once
// The layers of a Taylor-mode SIREN jet: a = sin(h W^T + b) on jet channels,
// and the final linear map.
//
// Channels [B, C, m] with C = 1 (value), 5 (+ 4 first derivatives) or 15
// (+ 10 distinct second derivatives, pairs (k,l), k <= l, in the order
// (0,0) (0,1) (0,2) (0,3) (1,1) (1,2) (1,3) (2,2) (2,3) (3,3)).
// Every channel goes through the weight matrix (y = h W^T; the bias only
// enters the value, z = y_0 + b), then the chain rule of the sine:
//   a = sin z,  a_k = cos z z_k,  a_kl = cos z z_kl - sin z z_k z_l.
//
// fused (CPU, float32/float64): the layer is one autograd node with a
// hand-written backward. Its forward and backward each run as one parallel
// loop over blocks of points; a block's matrix products (single-threaded
// BLAS calls) and its elementwise chain rule run back to back while the
// block is in cache, and the threads never wait on each other or on a BLAS
// thread pool. The node is first-order: gradients of its gradients are not
// supported (the autograd jet or fused = false gives those).
// Otherwise: the same formulas as ordinary tensor operations under autograd
// (any device, any order of differentiation).

#include <torch/torch.h>

namespace lumpy::siren {

// The pairs (k, l), k <= l, of the 10 distinct second derivatives, in
// channel order, and the same as a long tensor on a device.
inline constexpr int64_t kPairK[10] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 3};
inline constexpr int64_t kPairL[10] = {0, 1, 2, 3, 1, 2, 3, 2, 3, 3};
torch::Tensor PairIndex(const int64_t (&pairs)[10], const torch::Device& device);

torch::Tensor TaylorSinLayer(const torch::Tensor& h, const torch::Tensor& weight,
                             const torch::Tensor& bias, bool fused);

// The output layer: the linear map alone, y = h W^T with b added to the value.
torch::Tensor TaylorLinearLayer(const torch::Tensor& h, const torch::Tensor& weight,
                                const torch::Tensor& bias, bool fused);

}  // namespace lumpy::siren
