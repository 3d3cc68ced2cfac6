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
// Two implementations:
//   TaylorSinLayer / TaylorLinearLayer: the formulas as tensor operations
//     under autograd (any device, any order of differentiation).
//   FusedTaylorJet (CPU, float32/float64): the whole jet, from the points'
//     channels through every layer and the output map to g, dg, d2g, as one
//     autograd node with a hand-written backward. Forward and backward each
//     run as one parallel loop over blocks of points; a block goes through
//     all layers (single-threaded BLAS products and the chain rule) while it
//     is in cache, and the threads never wait on each other or on a BLAS
//     thread pool. One node instead of ~30 matters where batches are small
//     (a ray tracer's stages: 1 to 48 points). Orders 1 and 2 are
//     differentiable once (the tensor path gives gradients of gradients);
//     order 0 to any order (asked for a graph, its backward recomputes
//     TensorMetric and differentiates that).

#include <torch/torch.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "lumpy/jet.h"

namespace lumpy::siren {

// The pairs (k, l), k <= l, of the 10 distinct second derivatives, in
// channel order, and the same as a long tensor on a device.
inline constexpr int64_t kPairK[10] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 3};
inline constexpr int64_t kPairL[10] = {0, 1, 2, 3, 1, 2, 3, 2, 3, 3};
torch::Tensor PairIndex(const int64_t (&pairs)[10], const torch::Device& device);

// The output map: g_ij is output kMetricIndex[4i+j] of the 10 mapped outputs
// [-e^o0, e^o1, e^o2, e^o3, o4..o9] (kDiagonalSign: the signs of the
// exponentials), and kPairOf[4k+l] is the distinct second-derivative channel
// of the ordered pair (k, l).
inline constexpr int64_t kMetricIndex[16] = {0, 4, 5, 6, 4, 1, 7, 8, 5, 7, 2, 9, 6, 8, 9, 3};
inline constexpr int64_t kPairOf[16] = {0, 1, 2, 3, 1, 4, 5, 6, 2, 5, 7, 8, 3, 6, 8, 9};
inline constexpr double kDiagonalSign[4] = {-1.0, 1.0, 1.0, 1.0};

torch::Tensor TaylorSinLayer(const torch::Tensor& h, const torch::Tensor& weight,
                             const torch::Tensor& bias);

// The output layer: the linear map alone, y = h W^T with b added to the value.
torch::Tensor TaylorLinearLayer(const torch::Tensor& h, const torch::Tensor& weight,
                                const torch::Tensor& bias);

// The signs of the diagonal outputs' exponentials [4], and kMetricIndex as a
// long tensor on a device.
torch::Tensor DiagonalSign(const torch::TensorOptions& options);
torch::Tensor MetricIndex(const torch::Device& device);

// The metric g [B,4,4] at x [B,4] of the SIREN whose layers are params (as
// FusedTaylorJet's), inputs clipped to [-clip, clip], as tensor operations
// (differentiable to any order): the one definition of the network's value.
torch::Tensor TensorMetric(const torch::Tensor& x, const std::vector<torch::Tensor>& params, double clip);

// Whether the fused jet runs on these points (CPU, float32/float64).
bool FusedJetApplies(const torch::Tensor& x);

// The parameters {W_0, b_0, ..., W_out, b_out} as one flat tensor (each
// flattened, in that order), concatenated again only when one of them has
// changed (another tensor or storage, other values, requires_grad) or grad
// mode has. A jet takes its parameters through this one tensor: a ray's
// hundreds of 1-point jets per step then add their parameter gradients into
// one buffer, one operation each, where ten tensors each would cost ten, and
// the concatenation's backward splits the sum once. The values are compared
// byte for byte (a few microseconds): an update through .data() (LibTorch's
// own SGD makes one) leaves the version counter as it was.
class FlatParams {
 public:
  const torch::Tensor& Get(const std::vector<torch::Tensor>& params);

 private:
  struct Key {
    const void* impl;
    const void* data;
    int64_t offset, bytes;  // where its values lie in flat_
    bool requires_grad;
  };
  std::mutex mu_;
  std::vector<Key> key_;
  torch::Tensor flat_;
  bool grad_mode_ = false;
};

// The jet of order 0, 1 or 2 at points x [B,4] of the SIREN whose layers are
// params = {W_0, b_0, ..., W_out, b_out} (W_out [10, hidden]), inputs
// clipped to [-clip, clip]; g_ij from the outputs as in siren.cc. With a
// cache, the flat parameters come from it.
Jet FusedTaylorJet(const torch::Tensor& x, const std::vector<torch::Tensor>& params, double clip, int order,
                   FlatParams* cache = nullptr);

}  // namespace lumpy::siren
