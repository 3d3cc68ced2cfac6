#pragma once
// The siren's fused-jet kernels on one block of points (taylor_sin.cc): the
// chain rule of sin through the Taylor channels, the output map to the
// metric's jet, the layer products, and how a batch is cut into blocks.
// Private to the siren plugin.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "taylor_sin.h"  // the channel tables (kPairK, kMetricIndex, ...)

namespace lumpy::siren {

// Points per block at most: one layer's channels of a block (256 x 15 x 64
// float32, 960 KiB) stay in cache between its product and its chain rule.
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

// Points per block for a batch: at most kBlock, and small batches (a ray
// tracer's 48 rays) split over the threads, down to kMinBlock points.
constexpr int64_t kMinBlock = 8;
inline int64_t BlockSize(int64_t points) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  return std::clamp<int64_t>((points + threads - 1) / threads, kMinBlock, kBlock);
}

// Calls f(begin, end) for blocks of at most `block` points, the blocks shared
// out over LibTorch's intra-op threads.
template <typename F>
void ForBlocks(int64_t points, int64_t block, const F& f) {
  at::parallel_for(0, points, block, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += block) f(b, std::min(end, b + block));
  });
}

// The output map on one point: y [C,10] (value, d_k, d_kl channels) -> g [16],
// dg [64] = [i][j][k], d2g [256] = [i][j][k][l].
template <typename T>
void OutputMap(const T* y, int64_t channels, T* g, T* dg, T* d2g) {
  T v[10], f[4][10], s[10][10];
  for (int i = 0; i < 10; ++i) {
    const bool diag = i < 4;
    const T e = diag ? static_cast<T>(kDiagonalSign[i]) * std::exp(y[i]) : T(1);
    v[i] = diag ? e : y[i];
    if (channels < 5) continue;
    for (int k = 0; k < 4; ++k) f[k][i] = diag ? e * y[(1 + k) * 10 + i] : y[(1 + k) * 10 + i];
    if (channels < 15) continue;
    for (int p = 0; p < 10; ++p) {
      const T ykl = y[(5 + p) * 10 + i];
      s[p][i] = diag ? e * (ykl + y[(1 + kPairK[p]) * 10 + i] * y[(1 + kPairL[p]) * 10 + i]) : ykl;
    }
  }
  for (int ij = 0; ij < 16; ++ij) {
    const int i = kMetricIndex[ij];
    g[ij] = v[i];
    if (channels < 5) continue;
    for (int k = 0; k < 4; ++k) dg[ij * 4 + k] = f[k][i];
    if (channels < 15) continue;
    for (int kl = 0; kl < 16; ++kl) d2g[ij * 16 + kl] = s[kPairOf[kl]][i];
  }
}

// Its adjoint: dL/dg, dL/d(dg), dL/d(d2g) -> dL/dy [C,10].
template <typename T>
void OutputMapBackward(const T* y, int64_t channels, const T* gb, const T* dgb, const T* d2gb,
                       T* yb) {
  T vb[10] = {0}, fb[4][10] = {{0}}, sb[10][10] = {{0}};
  for (int ij = 0; ij < 16; ++ij) {
    const int i = kMetricIndex[ij];
    vb[i] += gb[ij];
    if (channels < 5) continue;
    for (int k = 0; k < 4; ++k) fb[k][i] += dgb[ij * 4 + k];
    if (channels < 15) continue;
    for (int kl = 0; kl < 16; ++kl) sb[kPairOf[kl]][i] += d2gb[ij * 16 + kl];
  }
  for (int i = 0; i < 10; ++i) {
    if (i >= 4) {
      yb[i] = vb[i];
      if (channels < 5) continue;
      for (int k = 0; k < 4; ++k) yb[(1 + k) * 10 + i] = fb[k][i];
      if (channels < 15) continue;
      for (int p = 0; p < 10; ++p) yb[(5 + p) * 10 + i] = sb[p][i];
      continue;
    }
    const T e = static_cast<T>(kDiagonalSign[i]) * std::exp(y[i]);
    T eb = vb[i];
    for (int k = 0; k < 4 && channels >= 5; ++k) {
      const T yk = y[(1 + k) * 10 + i];
      eb += fb[k][i] * yk;
      yb[(1 + k) * 10 + i] = fb[k][i] * e;
    }
    if (channels >= 15) {
      for (int p = 0; p < 10; ++p) {
        const int k = kPairK[p], l = kPairL[p];
        const T yk = y[(1 + k) * 10 + i], yl = y[(1 + l) * 10 + i];
        eb += sb[p][i] * (y[(5 + p) * 10 + i] + yk * yl);
        yb[(5 + p) * 10 + i] = sb[p][i] * e;
        yb[(1 + k) * 10 + i] += sb[p][i] * e * yl;
        yb[(1 + l) * 10 + i] += sb[p][i] * e * yk;
      }
    }
    yb[i] = eb * e;  // de/do = e
  }
}

// The three products of a layer on rows of channels (R = points x channels):
// y [R,n] = h [R,m] W^T, gw [n,m] += gy^T h, gh [R,m] = gy W. A ray tracer's
// stage has a handful of rows, where a BLAS call through LibTorch costs more
// than the arithmetic: up to kSmallRows rows they are plain loops (contiguous,
// vectorised), above that single-threaded BLAS on views of the same memory.
constexpr int64_t kSmallRows = 32;

template <typename T>
torch::Tensor View(T* p, int64_t rows, int64_t cols) {
  return torch::from_blob(p, {rows, cols}, torch::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

template <typename T>
void Product(const T* h, const T* w, T* y, int64_t rows, int64_t m, int64_t n) {
  if (rows > kSmallRows) {
    auto out = View(y, rows, n);
    at::mm_out(out, View(const_cast<T*>(h), rows, m), View(const_cast<T*>(w), n, m).t());
    return;
  }
  // Dot products with 8 partial sums, so that the compiler vectorises them
  // (a single running sum is a serial chain it may not reorder).
  constexpr int kLanes = 8;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const T* hr = h + r * m;
      const T* wj = w + j * m;
      T part[kLanes] = {0};
      int64_t i = 0;
      for (; i + kLanes <= m; i += kLanes)
        for (int q = 0; q < kLanes; ++q) part[q] += hr[i + q] * wj[i + q];
      T acc = 0;
      for (int q = 0; q < kLanes; ++q) acc += part[q];
      for (; i < m; ++i) acc += hr[i] * wj[i];
      y[r * n + j] = acc;
    }
}

template <typename T>
void WeightGrad(const T* gy, const T* h, T* gw, int64_t rows, int64_t m, int64_t n) {
  if (rows > kSmallRows) {
    auto out = View(gw, n, m);
    out.addmm_(View(const_cast<T*>(gy), rows, n).t(), View(const_cast<T*>(h), rows, m));
    return;
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const T g = gy[r * n + j];
      if (g == 0) continue;
      const T* hr = h + r * m;
      T* gwj = gw + j * m;
      for (int64_t i = 0; i < m; ++i) gwj[i] += g * hr[i];
    }
}

template <typename T>
void InputGrad(const T* gy, const T* w, T* gh, int64_t rows, int64_t m, int64_t n) {
  if (rows > kSmallRows) {
    auto out = View(gh, rows, m);
    at::mm_out(out, View(const_cast<T*>(gy), rows, n), View(const_cast<T*>(w), n, m));
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    T* ghr = gh + r * m;
    for (int64_t i = 0; i < m; ++i) ghr[i] = 0;
    for (int64_t j = 0; j < n; ++j) {
      const T g = gy[r * n + j];
      if (g == 0) continue;
      const T* wj = w + j * m;
      for (int64_t i = 0; i < m; ++i) ghr[i] += g * wj[i];
    }
  }
}

// sin and cos of z = y_value + b on each point of a block (s, c [P,n]).
template <typename T>
void SinCos(const T* y, const T* b, T* s, T* c, int64_t points, int64_t channels, int64_t n) {
  if (points * n > 4 * kSmallRows * 64) {  // many: LibTorch's vectorised sin/cos
    auto z = View(const_cast<T*>(y), points, channels * n).narrow(1, 0, n) +
             View(const_cast<T*>(b), 1, n);
    auto so = View(s, points, n), co = View(c, points, n);
    at::sin_out(so, z);
    at::cos_out(co, z);
    return;
  }
  for (int64_t p = 0; p < points; ++p)
    for (int64_t j = 0; j < n; ++j) {
      const T z = y[p * channels * n + j] + b[j];
      s[p * n + j] = std::sin(z);
      c[p * n + j] = std::cos(z);
    }
}

}  // namespace lumpy::siren
