#include "taylor_sin.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace lumpy::siren {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Points per block: 64 points x 15 channels x 64 units of float32 is 240 KiB,
// so a block's products and chain rule stay within L2.
constexpr int64_t kBlock = 256;

// The chain rule on one block: s, c = sin z, cos z [P,n]; y, a [P,C,n].
template <typename T>
void ChainForward(const T* __restrict y, const T* __restrict s, const T* __restrict c,
                  T* __restrict a, int64_t points, int64_t channels, int64_t n) {
  for (int64_t b = 0; b < points; ++b) {
    const T* yb = y + b * channels * n;
    const T* sb = s + b * n;
    const T* cb = c + b * n;
    T* ab = a + b * channels * n;
    for (int64_t j = 0; j < n; ++j) ab[j] = sb[j];
    if (channels == 1) continue;
    for (int64_t k = 0; k < 4; ++k) {
      const T* zk = yb + (1 + k) * n;
      T* ak = ab + (1 + k) * n;
      for (int64_t j = 0; j < n; ++j) ak[j] = cb[j] * zk[j];
    }
    if (channels == 5) continue;
    for (int64_t p = 0; p < 10; ++p) {
      const T* zk = yb + (1 + kPairK[p]) * n;
      const T* zl = yb + (1 + kPairL[p]) * n;
      const T* zkl = yb + (5 + p) * n;
      T* akl = ab + (5 + p) * n;
      for (int64_t j = 0; j < n; ++j) akl[j] = cb[j] * zkl[j] - sb[j] * zk[j] * zl[j];
    }
  }
}

// Its adjoint: ga [P,C,n] -> gy [P,C,n].
template <typename T>
void ChainBackward(const T* __restrict y, const T* __restrict s, const T* __restrict c,
                   const T* __restrict ga, T* __restrict gy, int64_t points, int64_t channels,
                   int64_t n) {
  for (int64_t b = 0; b < points; ++b) {
    const T* yb = y + b * channels * n;
    const T* gab = ga + b * channels * n;
    const T* sb = s + b * n;
    const T* cb = c + b * n;
    T* gz = gy + b * channels * n;
    for (int64_t j = 0; j < n; ++j) gz[j] = cb[j] * gab[j];
    if (channels == 1) continue;
    for (int64_t k = 0; k < 4; ++k) {
      const T* zk = yb + (1 + k) * n;
      const T* gak = gab + (1 + k) * n;
      T* gzk = gz + (1 + k) * n;
      for (int64_t j = 0; j < n; ++j) {
        gz[j] -= sb[j] * zk[j] * gak[j];
        gzk[j] = cb[j] * gak[j];
      }
    }
    if (channels == 5) continue;
    for (int64_t p = 0; p < 10; ++p) {
      const int64_t k = kPairK[p], l = kPairL[p];
      const T* zk = yb + (1 + k) * n;
      const T* zl = yb + (1 + l) * n;
      const T* zkl = yb + (5 + p) * n;
      const T* gakl = gab + (5 + p) * n;
      T* gzkl = gz + (5 + p) * n;
      for (int64_t j = 0; j < n; ++j) {
        gz[j] -= (sb[j] * zkl[j] + cb[j] * zk[j] * zl[j]) * gakl[j];
        gzkl[j] = cb[j] * gakl[j];
      }
      // d(z_k z_l)/dz_k = z_l, d/dz_l = z_k (k == l: both, 2 z_k).
      T* gzk = gz + (1 + k) * n;
      for (int64_t j = 0; j < n; ++j) gzk[j] -= sb[j] * gakl[j] * zl[j];
      T* gzl = gz + (1 + l) * n;
      for (int64_t j = 0; j < n; ++j) gzl[j] -= sb[j] * gakl[j] * zk[j];
    }
  }
}

// Calls f(begin, end) for blocks of at most kBlock points, the blocks shared
// out over LibTorch's intra-op threads.
template <typename F>
void ForBlocks(int64_t points, const F& f) {
  at::parallel_for(0, points, kBlock, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kBlock) f(b, std::min(end, b + kBlock));
  });
}

struct FusedLayer : public torch::autograd::Function<FusedLayer> {
  // sine = false: the linear map alone, a = y with the bias on the value.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h_in,
                               const torch::Tensor& weight_in, const torch::Tensor& bias_in,
                               bool sine) {
    // Plain tensors from here on: the worker threads do not share this
    // thread's grad mode.
    auto h = h_in.detach().contiguous();
    auto weight = weight_in.detach();
    auto bias = bias_in.detach();
    const int64_t points = h.size(0), channels = h.size(1), m = h.size(2), n = weight.size(0);
    auto y = torch::empty({points, channels, n}, h.options());
    auto s = sine ? torch::empty({points, n}, h.options()) : torch::Tensor();
    auto c = sine ? torch::empty({points, n}, h.options()) : torch::Tensor();
    auto a = sine ? torch::empty_like(y) : y;
    const auto wt = weight.t();
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "taylor_sin_forward", [&] {
      ForBlocks(points, [&](int64_t b0, int64_t b1) {
        const int64_t p = b1 - b0;
        auto yb = y.narrow(0, b0, p);
        auto y2 = yb.view({p * channels, n});
        at::mm_out(y2, h.narrow(0, b0, p).view({p * channels, m}), wt);
        if (!sine) {
          yb.select(1, 0).add_(bias);
          return;
        }
        auto z = yb.select(1, 0) + bias;
        auto sb = s.narrow(0, b0, p), cb = c.narrow(0, b0, p);
        at::sin_out(sb, z);
        at::cos_out(cb, z);
        ChainForward<scalar_t>(yb.data_ptr<scalar_t>(), sb.data_ptr<scalar_t>(),
                               cb.data_ptr<scalar_t>(), a.narrow(0, b0, p).data_ptr<scalar_t>(),
                               p, channels, n);
      });
    });
    if (sine) {
      ctx->save_for_backward({h, weight, y, s, c});
    } else {
      ctx->save_for_backward({h, weight});
    }
    ctx->saved_data["sine"] = sine;
    return a;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // Grad mode is on in backward exactly when create_graph was asked.
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "siren: the fused Taylor jet is not twice differentiable (create_graph = true "
                "was asked); set fused = false or jet = \"autograd\"");
    auto saved = ctx->get_saved_variables();
    const auto& h = saved[0];
    const auto& weight = saved[1];
    const bool sine = ctx->saved_data["sine"].toBool();
    auto ga = grads[0].contiguous();
    const bool need_h = ctx->needs_input_grad(0);
    const int64_t points = h.size(0), channels = h.size(1), m = h.size(2), n = weight.size(0);
    auto gy = sine ? torch::empty_like(ga) : ga;
    torch::Tensor gh = need_h ? torch::empty_like(h) : torch::Tensor();
    // Per-thread sums of the weight gradient, added up at the end.
    auto gw_parts = torch::zeros({at::get_num_threads(), n, m}, h.options());
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "taylor_sin_backward", [&] {
      ForBlocks(points, [&](int64_t b0, int64_t b1) {
        const int64_t p = b1 - b0;
        auto gyb = gy.narrow(0, b0, p);
        if (sine) {
          ChainBackward<scalar_t>(saved[2].narrow(0, b0, p).data_ptr<scalar_t>(),
                                  saved[3].narrow(0, b0, p).data_ptr<scalar_t>(),
                                  saved[4].narrow(0, b0, p).data_ptr<scalar_t>(),
                                  ga.narrow(0, b0, p).data_ptr<scalar_t>(),
                                  gyb.data_ptr<scalar_t>(), p, channels, n);
        }
        auto gy2 = gyb.view({p * channels, n});
        if (need_h) {
          auto gh2 = gh.narrow(0, b0, p).view({p * channels, m});
          at::mm_out(gh2, gy2, weight);
        }
        gw_parts[at::get_thread_num()].addmm_(gy2.t(), h.narrow(0, b0, p).view({p * channels, m}));
      });
    });
    return {gh, gw_parts.sum(0), gy.select(1, 0).sum(0), torch::Tensor()};
  }
};

bool Fusable(const torch::Tensor& h) {
  return h.device().is_cpu() &&
         (h.scalar_type() == torch::kFloat32 || h.scalar_type() == torch::kFloat64);
}

void CheckShapes(const torch::Tensor& h, const torch::Tensor& weight, const torch::Tensor& bias) {
  TORCH_CHECK(h.dim() == 3 && (h.size(1) == 1 || h.size(1) == 5 || h.size(1) == 15),
              "siren: jet channels must be [B, 1|5|15, m], got ", h.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == h.size(2) && bias.dim() == 1 &&
                  bias.size(0) == weight.size(0),
              "siren: weight [n, m] and bias [n] do not fit channels ", h.sizes());
}

// The same layers as tensor operations, differentiated by autograd.
torch::Tensor TensorLinear(const torch::Tensor& h, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  auto y = torch::matmul(h, weight.t());
  return torch::cat({(y.select(1, 0) + bias).unsqueeze(1), y.narrow(1, 1, y.size(1) - 1)}, 1);
}

torch::Tensor TensorSin(const torch::Tensor& h, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  auto y = torch::matmul(h, weight.t());
  auto z = y.select(1, 0) + bias;
  auto s = torch::sin(z), c = torch::cos(z);
  const int64_t channels = y.size(1);
  if (channels == 1) return s.unsqueeze(1);
  auto zk = y.narrow(1, 1, 4);
  auto ak = c.unsqueeze(1) * zk;
  if (channels == 5) return torch::cat({s.unsqueeze(1), ak}, 1);
  auto pk = PairIndex(kPairK, y.device()), pl = PairIndex(kPairL, y.device());
  auto akl = c.unsqueeze(1) * y.narrow(1, 5, 10) -
             s.unsqueeze(1) * zk.index_select(1, pk) * zk.index_select(1, pl);
  return torch::cat({s.unsqueeze(1), ak, akl}, 1);
}

}  // namespace

torch::Tensor PairIndex(const int64_t (&pairs)[10], const torch::Device& device) {
  return torch::tensor(std::vector<int64_t>(pairs, pairs + 10),
                       torch::TensorOptions().dtype(torch::kLong).device(device));
}

torch::Tensor TaylorSinLayer(const torch::Tensor& h, const torch::Tensor& weight,
                             const torch::Tensor& bias, bool fused) {
  CheckShapes(h, weight, bias);
  if (fused && Fusable(h)) return FusedLayer::apply(h, weight, bias, true);
  return TensorSin(h, weight, bias);
}

torch::Tensor TaylorLinearLayer(const torch::Tensor& h, const torch::Tensor& weight,
                                const torch::Tensor& bias, bool fused) {
  CheckShapes(h, weight, bias);
  if (fused && Fusable(h)) return FusedLayer::apply(h, weight, bias, false);
  return TensorLinear(h, weight, bias);
}

}  // namespace lumpy::siren
