#include "physics/geodesic_rhs.h"

#include <ATen/Parallel.h>

#include <cstring>

namespace lumpy {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using ray::kJacobi;
constexpr int64_t kGrain = 16;

inline int I2(int a, int b) { return a * 4 + b; }
inline int I3(int a, int b, int c) { return (a * 4 + b) * 4 + c; }
inline int I4(int a, int b, int c, int d) { return ((a * 4 + b) * 4 + c) * 4 + d; }

// The inverse of a 4x4 matrix by cofactors (2x2 minors of the row pairs).
void Invert4(const double* m, double* inv) {
  const double s0 = m[0] * m[5] - m[4] * m[1], s1 = m[0] * m[6] - m[4] * m[2];
  const double s2 = m[0] * m[7] - m[4] * m[3], s3 = m[1] * m[6] - m[5] * m[2];
  const double s4 = m[1] * m[7] - m[5] * m[3], s5 = m[2] * m[7] - m[6] * m[3];
  const double c5 = m[10] * m[15] - m[14] * m[11], c4 = m[9] * m[15] - m[13] * m[11];
  const double c3 = m[9] * m[14] - m[13] * m[10], c2 = m[8] * m[15] - m[12] * m[11];
  const double c1 = m[8] * m[14] - m[12] * m[10], c0 = m[8] * m[13] - m[12] * m[9];
  const double r = 1.0 / (s0 * c5 - s1 * c4 + s2 * c3 + s3 * c2 - s4 * c1 + s5 * c0);
  inv[0] = (m[5] * c5 - m[6] * c4 + m[7] * c3) * r;
  inv[1] = (-m[1] * c5 + m[2] * c4 - m[3] * c3) * r;
  inv[2] = (m[13] * s5 - m[14] * s4 + m[15] * s3) * r;
  inv[3] = (-m[9] * s5 + m[10] * s4 - m[11] * s3) * r;
  inv[4] = (-m[4] * c5 + m[6] * c2 - m[7] * c1) * r;
  inv[5] = (m[0] * c5 - m[2] * c2 + m[3] * c1) * r;
  inv[6] = (-m[12] * s5 + m[14] * s2 - m[15] * s1) * r;
  inv[7] = (m[8] * s5 - m[10] * s2 + m[11] * s1) * r;
  inv[8] = (m[4] * c4 - m[5] * c2 + m[7] * c0) * r;
  inv[9] = (-m[0] * c4 + m[1] * c2 - m[3] * c0) * r;
  inv[10] = (m[12] * s4 - m[13] * s2 + m[15] * s0) * r;
  inv[11] = (-m[8] * s4 + m[9] * s2 - m[11] * s0) * r;
  inv[12] = (-m[4] * c3 + m[5] * c1 - m[6] * c0) * r;
  inv[13] = (m[0] * c3 - m[1] * c1 + m[2] * c0) * r;
  inv[14] = (-m[12] * s3 + m[13] * s1 - m[14] * s0) * r;
  inv[15] = (m[8] * s3 - m[9] * s1 + m[10] * s0) * r;
}

// One ray's right-hand side in float64: inputs copied in, intermediates kept
// for the adjoint (which recomputes them rather than saving [R,...] tensors).
struct RayRhs {
  bool jacobi;
  double k[4], g[16], m[16], dg[64], d2g[256];
  double xi[2][4], eta[2][4];
  double dgk[16];  // (d_k g_dc) k^k as [d][c]
  double low[4];   // L_d
  double acc[4];   // -g^-1 L
  double c[16];    // C_dc
  double e[16];    // E_me = d_e g_mn acc^n + P_me - 1/2 Q_me
  double v[2][4];  // E xi_A + C eta_A
  double deta[2][4];

  template <typename T>
  RayRhs(const T* y, const T* g_in, const T* dg_in, const T* d2g_in, bool jac) : jacobi(jac) {
    for (int i = 0; i < 4; ++i) k[i] = y[4 + i];
    for (int i = 0; i < 16; ++i) g[i] = g_in[i];
    for (int i = 0; i < 64; ++i) dg[i] = dg_in[i];
    Invert4(g, m);
    for (int d = 0; d < 4; ++d)
      for (int cc = 0; cc < 4; ++cc) {
        double s = 0;
        for (int q = 0; q < 4; ++q) s += dg[I3(d, cc, q)] * k[q];
        dgk[I2(d, cc)] = s;
      }
    for (int d = 0; d < 4; ++d) {
      double s = 0, t = 0;
      for (int cc = 0; cc < 4; ++cc) s += dgk[I2(d, cc)] * k[cc];
      for (int b = 0; b < 4; ++b)
        for (int cc = 0; cc < 4; ++cc) t += k[b] * k[cc] * dg[I3(b, cc, d)];
      low[d] = s - 0.5 * t;
    }
    for (int a = 0; a < 4; ++a) {
      double s = 0;
      for (int d = 0; d < 4; ++d) s += m[I2(a, d)] * low[d];
      acc[a] = -s;
    }
    if (!jacobi) return;
    for (int i = 0; i < 256; ++i) d2g[i] = d2g_in[i];
    for (int a = 0; a < 2; ++a)
      for (int i = 0; i < 4; ++i) {
        xi[a][i] = y[8 + 8 * a + i];
        eta[a][i] = y[12 + 8 * a + i];
      }
    for (int d = 0; d < 4; ++d)
      for (int cc = 0; cc < 4; ++cc) {
        double s = dgk[I2(d, cc)];
        for (int b = 0; b < 4; ++b) s += dg[I3(d, b, cc)] * k[b] - k[b] * dg[I3(b, cc, d)];
        c[I2(d, cc)] = s;
      }
    for (int mm = 0; mm < 4; ++mm)
      for (int ee = 0; ee < 4; ++ee) {
        double s = 0;
        for (int n = 0; n < 4; ++n) s += dg[I3(mm, n, ee)] * acc[n];
        for (int b = 0; b < 4; ++b)
          for (int cc = 0; cc < 4; ++cc)
            s += k[b] * k[cc] * (d2g[I4(mm, cc, b, ee)] - 0.5 * d2g[I4(b, cc, mm, ee)]);
        e[I2(mm, ee)] = s;
      }
    for (int a = 0; a < 2; ++a) {
      for (int i = 0; i < 4; ++i) {
        double s = 0;
        for (int j = 0; j < 4; ++j) s += e[I2(i, j)] * xi[a][j] + c[I2(i, j)] * eta[a][j];
        v[a][i] = s;
      }
      for (int i = 0; i < 4; ++i) {
        double s = 0;
        for (int j = 0; j < 4; ++j) s += m[I2(i, j)] * v[a][j];
        deta[a][i] = -s;
      }
    }
  }

  template <typename T>
  void Write(T* out, int64_t dim) const {
    for (int i = 0; i < 4; ++i) {
      out[i] = static_cast<T>(k[i]);
      out[4 + i] = static_cast<T>(acc[i]);
    }
    if (dim != kJacobi) return;
    for (int a = 0; a < 2; ++a)
      for (int i = 0; i < 4; ++i) {
        out[8 + 8 * a + i] = static_cast<T>(eta[a][i]);
        out[12 + 8 * a + i] = static_cast<T>(deta[a][i]);
      }
  }

  // The adjoint: ob [D] = dL/d(dy) -> dL/dy, dL/dg, dL/d(dg), dL/d(d2g); the
  // chain rule through the intermediates, in the reverse order of the
  // constructor.
  template <typename T>
  void Adjoint(const T* ob, T* yb_out, T* gb_out, T* dgb_out, T* d2gb_out) const {
    double kb[4], accb[4], mb[16] = {0}, dgb[64] = {0};
    for (int i = 0; i < 4; ++i) {
      kb[i] = ob[i];
      accb[i] = ob[4 + i];
    }
    double xib[2][4] = {{0}}, etab[2][4] = {{0}};
    if (jacobi) {
      double d2gb[256] = {0}, eb[16] = {0}, cb[16] = {0};
      DeviationAdjoint(ob, mb, eb, cb, xib, etab);
      EAdjoint(eb, kb, accb, dgb, d2gb);
      CAdjoint(cb, kb, dgb);
      for (int i = 0; i < 256; ++i) d2gb_out[i] = static_cast<T>(d2gb[i]);
    }
    double lb[4];
    AccelerationAdjoint(accb, lb, mb);
    LowAdjoint(lb, kb, dgb);
    InverseAdjoint(mb, gb_out);
    for (int i = 0; i < 64; ++i) dgb_out[i] = static_cast<T>(dgb[i]);
    for (int i = 0; i < 4; ++i) {
      yb_out[i] = 0;  // x enters only through the jet
      yb_out[4 + i] = static_cast<T>(kb[i]);
    }
    if (!jacobi) return;
    for (int a = 0; a < 2; ++a)
      for (int i = 0; i < 4; ++i) {
        yb_out[8 + 8 * a + i] = static_cast<T>(xib[a][i]);
        yb_out[12 + 8 * a + i] = static_cast<T>(etab[a][i]);
      }
  }

 private:
  // The Jacobi map's outputs, per deviation A: eta_A (seeds etab) and
  // deta_A = -M v_A with v_A = E xi_A + C eta_A, to mb, eb, cb, xib, etab.
  template <typename T>
  void DeviationAdjoint(const T* ob, double* mb, double* eb, double* cb, double xib[2][4],
                        double etab[2][4]) const {
    for (int a = 0; a < 2; ++a) {
      double detab[4], vb[4];
      for (int i = 0; i < 4; ++i) {
        etab[a][i] = ob[8 + 8 * a + i];
        detab[i] = ob[12 + 8 * a + i];
      }
      // deta = -M v.
      for (int j = 0; j < 4; ++j) {
        double s = 0;
        for (int i = 0; i < 4; ++i) s += m[I2(i, j)] * detab[i];
        vb[j] = -s;
      }
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) mb[I2(i, j)] -= detab[i] * v[a][j];
      // v = E xi + C eta.
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          eb[I2(i, j)] += vb[i] * xi[a][j];
          cb[I2(i, j)] += vb[i] * eta[a][j];
          xib[a][j] += e[I2(i, j)] * vb[i];
          etab[a][j] += c[I2(i, j)] * vb[i];
        }
    }
  }

  // E_me = dg[m][n][e] acc^n + k^b k^c (d2g[m][c][b][e] - 1/2 d2g[b][c][m][e]).
  void EAdjoint(const double* eb, double* kb, double* accb, double* dgb, double* d2gb) const {
    for (int mm = 0; mm < 4; ++mm)
      for (int ee = 0; ee < 4; ++ee) {
        const double w = eb[I2(mm, ee)];
        for (int n = 0; n < 4; ++n) {
          dgb[I3(mm, n, ee)] += w * acc[n];
          accb[n] += w * dg[I3(mm, n, ee)];
        }
        for (int b = 0; b < 4; ++b)
          for (int cc = 0; cc < 4; ++cc) {
            const double p = d2g[I4(mm, cc, b, ee)], q = d2g[I4(b, cc, mm, ee)];
            d2gb[I4(mm, cc, b, ee)] += w * k[b] * k[cc];
            d2gb[I4(b, cc, mm, ee)] -= 0.5 * w * k[b] * k[cc];
            kb[b] += w * k[cc] * (p - 0.5 * q);
            kb[cc] += w * k[b] * (p - 0.5 * q);
          }
      }
  }

  // C_dc = dg[d][c][q] k^q + dg[d][b][c] k^b - k^b dg[b][c][d].
  void CAdjoint(const double* cb, double* kb, double* dgb) const {
    for (int d = 0; d < 4; ++d)
      for (int cc = 0; cc < 4; ++cc) {
        const double w = cb[I2(d, cc)];
        for (int q = 0; q < 4; ++q) {
          dgb[I3(d, cc, q)] += w * k[q];
          kb[q] += w * dg[I3(d, cc, q)];
          dgb[I3(d, q, cc)] += w * k[q];
          kb[q] += w * dg[I3(d, q, cc)];
          dgb[I3(q, cc, d)] -= w * k[q];
          kb[q] -= w * dg[I3(q, cc, d)];
        }
      }
  }

  // acc = -M L: accb to lb (written) and mb.
  void AccelerationAdjoint(const double* accb, double* lb, double* mb) const {
    for (int d = 0; d < 4; ++d) {
      double s = 0;
      for (int a = 0; a < 4; ++a) s += m[I2(a, d)] * accb[a];
      lb[d] = -s;
    }
    for (int a = 0; a < 4; ++a)
      for (int d = 0; d < 4; ++d) mb[I2(a, d)] -= accb[a] * low[d];
  }

  // L_d = dg[d][c][q] k^q k^c - 1/2 k^b k^c dg[b][c][d].
  void LowAdjoint(const double* lb, double* kb, double* dgb) const {
    for (int d = 0; d < 4; ++d) {
      const double w = lb[d];
      for (int cc = 0; cc < 4; ++cc)
        for (int q = 0; q < 4; ++q) {
          dgb[I3(d, cc, q)] += w * k[q] * k[cc];
          kb[q] += w * dg[I3(d, cc, q)] * k[cc];
          kb[cc] += w * dg[I3(d, cc, q)] * k[q];
          dgb[I3(cc, q, d)] -= 0.5 * w * k[cc] * k[q];
          kb[cc] -= 0.5 * w * dg[I3(cc, q, d)] * k[q];
          kb[q] -= 0.5 * w * dg[I3(cc, q, d)] * k[cc];
        }
    }
  }

  // M = g^-1: gb = -M^T mb M^T, written to gb_out.
  template <typename T>
  void InverseAdjoint(const double* mb, T* gb_out) const {
    double t[16];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        double s = 0;
        for (int q = 0; q < 4; ++q) s += mb[I2(i, q)] * m[I2(j, q)];
        t[I2(i, j)] = s;  // mb M^T
      }
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        double s = 0;
        for (int q = 0; q < 4; ++q) s += m[I2(q, i)] * t[I2(q, j)];
        gb_out[I2(i, j)] = static_cast<T>(-s);
      }
  }
};

struct FusedRhs : public torch::autograd::Function<FusedRhs> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& y_in,
                               const torch::Tensor& g_in, const torch::Tensor& dg_in,
                               const torch::Tensor& d2g_in) {
    auto y = y_in.contiguous();
    auto g = g_in.contiguous();
    auto dg = dg_in.contiguous();
    const bool jacobi = y.size(1) == kJacobi;
    auto d2g = jacobi ? d2g_in.contiguous() : torch::Tensor();
    const int64_t rays = y.size(0), dim = y.size(1);
    auto out = torch::zeros_like(y);
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "geodesic_rhs_forward", [&] {
      const scalar_t* yp = y.data_ptr<scalar_t>();
      const scalar_t* gp = g.data_ptr<scalar_t>();
      const scalar_t* dgp = dg.data_ptr<scalar_t>();
      const scalar_t* d2gp = jacobi ? d2g.data_ptr<scalar_t>() : nullptr;
      scalar_t* op = out.data_ptr<scalar_t>();
      at::parallel_for(0, rays, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          RayRhs rhs(yp + r * dim, gp + r * 16, dgp + r * 64, jacobi ? d2gp + r * 256 : nullptr,
                     jacobi);
          rhs.Write(op + r * dim, dim);
        }
      });
    });
    ctx->save_for_backward({y, g, dg, jacobi ? d2g : torch::Tensor()});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "ray tracer: the fused right-hand side is differentiable once (create_graph = "
                "true was asked); trace with RayTracerOptions::fused = false for higher orders");
    auto saved = ctx->get_saved_variables();
    const auto& y = saved[0];
    const auto& g = saved[1];
    const auto& dg = saved[2];
    const auto& d2g = saved[3];
    const bool jacobi = y.size(1) == kJacobi;
    const int64_t rays = y.size(0), dim = y.size(1);
    auto ob = grads[0].contiguous();
    auto yb = torch::zeros_like(y), gb = torch::zeros_like(g), dgb = torch::zeros_like(dg);
    auto d2gb = jacobi ? torch::zeros_like(d2g) : torch::Tensor();
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "geodesic_rhs_backward", [&] {
      const scalar_t* yp = y.data_ptr<scalar_t>();
      const scalar_t* gp = g.data_ptr<scalar_t>();
      const scalar_t* dgp = dg.data_ptr<scalar_t>();
      const scalar_t* d2gp = jacobi ? d2g.data_ptr<scalar_t>() : nullptr;
      const scalar_t* obp = ob.data_ptr<scalar_t>();
      scalar_t* ybp = yb.data_ptr<scalar_t>();
      scalar_t* gbp = gb.data_ptr<scalar_t>();
      scalar_t* dgbp = dgb.data_ptr<scalar_t>();
      scalar_t* d2gbp = jacobi ? d2gb.data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, rays, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          RayRhs rhs(yp + r * dim, gp + r * 16, dgp + r * 64, jacobi ? d2gp + r * 256 : nullptr,
                     jacobi);
          rhs.Adjoint(obp + r * dim, ybp + r * dim, gbp + r * 16, dgbp + r * 64,
                      jacobi ? d2gbp + r * 256 : nullptr);
        }
      });
    });
    return {yb, gb, dgb, d2gb};
  }
};

}  // namespace

bool RayFusedApplies(const torch::Tensor& y, bool fused) {
  return fused && y.device().is_cpu() &&
         (y.scalar_type() == torch::kFloat32 || y.scalar_type() == torch::kFloat64);
}

torch::Tensor FreezeRays(const torch::Tensor& dy, const torch::Tensor& alive) {
  if (!alive.defined()) return dy;
  return torch::where(alive.to(dy.device()).view({-1, 1}), dy, torch::zeros_like(dy));
}

torch::Tensor GeodesicRhsOps(const torch::Tensor& y, const Jet& jet) {
  const bool jacobi = y.size(1) == kJacobi;
  const int64_t r = y.size(0);
  auto k = y.narrow(1, 4, 4);
  const auto& g = jet.g;
  auto ginv = torch::inverse(g);
  auto kcol = k.unsqueeze(2);                                       // [R,4,1]
  auto kk = (k.unsqueeze(2) * k.unsqueeze(1)).reshape({r, 1, 16});  // k^b k^c
  auto dg3 = jet.dg.reshape({r, 16, 4});
  auto dgk = torch::bmm(dg3, kcol).view({r, 4, 4});                // (d_k g_ij) k^k
  auto kdg = torch::bmm(kk, dg3).view({r, 4, 1});                  // k^b k^c d_d g_bc
  auto lower = torch::bmm(dgk, kcol) - 0.5 * kdg;                  // L_d [R,4,1]
  auto acc = -torch::bmm(ginv, lower);                             // [R,4,1]
  if (!jacobi) return torch::cat({k, acc.squeeze(2)}, 1);
  // [R, A, (xi, eta), 4] -> xi, eta as [R,4,2] (columns A).
  auto dev = y.narrow(1, 8, 16).view({r, 2, 2, 4});
  auto xi = dev.select(2, 0).transpose(1, 2), eta = dev.select(2, 1).transpose(1, 2);
  // d_c g_db k^b and d_e g_mn acc^n in one product: dg as [R, (d,c), b].
  auto dg_t = jet.dg.permute({0, 1, 3, 2}).reshape({r, 16, 4});
  auto both = torch::bmm(dg_t, torch::cat({kcol, acc}, 2));  // [R,16,2]
  auto dgk_c = both.select(2, 0).view({r, 4, 4}), dg_acc = both.select(2, 1).view({r, 4, 4});
  auto kdg_t = torch::bmm(k.unsqueeze(1), jet.dg.reshape({r, 4, 16})).view({r, 4, 4});  // [c,d]
  auto c = dgk + dgk_c - kdg_t.transpose(1, 2);
  auto d2 = jet.d2g.reshape({r, 16, 4, 4});
  auto h = torch::matmul(k.view({r, 1, 1, 4}), d2).view({r, 4, 4, 4});  // [m,c,e] = d_e(d_b g_mc k^b)
  auto p = torch::bmm(h.permute({0, 1, 3, 2}).reshape({r, 16, 4}), kcol).view({r, 4, 4});
  auto q = torch::bmm(kk, jet.d2g.reshape({r, 16, 16})).view({r, 4, 4});  // [m,e]
  auto deta = -torch::bmm(ginv, torch::bmm(dg_acc + p - 0.5 * q, xi) + torch::bmm(c, eta));
  auto ddev = torch::stack({eta.transpose(1, 2), deta.transpose(1, 2)}, 2).reshape({r, 16});
  return torch::cat({k, acc.squeeze(2), ddev}, 1);
}

torch::Tensor GeodesicRhsFused(const torch::Tensor& y, const Jet& jet) {
  TORCH_CHECK(y.dim() == 2 && (y.size(1) == 8 || y.size(1) == kJacobi),
              "ray tracer: states must be [R, 8|24], got ", y.sizes());
  TORCH_CHECK(y.size(1) == 8 || jet.d2g.defined(), "ray tracer: the Jacobi map needs a jet of order 2");
  // Every input defined (autograd asks each for its device): an empty
  // stand-in for d2g on geodesics alone.
  return FusedRhs::apply(y, jet.g, jet.dg,
                         y.size(1) == kJacobi ? jet.d2g : torch::empty({0}, y.options()));
}

torch::Tensor GeodesicRhs(const torch::Tensor& y, const Jet& jet, bool fused) {
  return RayFusedApplies(y, fused) ? GeodesicRhsFused(y, jet) : GeodesicRhsOps(y, jet);
}

namespace ray {

Rhs Derivative(MetricModel& metric, const torch::Tensor& y, bool fused,
               const torch::Tensor& alive, const torch::Tensor& x) {
  const int64_t order = y.size(1) == kJacobi ? 2 : 1;
  const int64_t live = alive.defined() ? alive.sum().item<int64_t>() : y.size(0);
  if (live == y.size(0)) {
    Jet jet = metric.jet(x.defined() ? x : y.narrow(1, 0, 4), order);
    return {GeodesicRhs(y, jet, fused), jet.g, jet.dg};
  }
  auto idx = alive.nonzero().squeeze(1).to(y.device());
  auto yl = y.index_select(0, idx);
  Jet jet = metric.jet(yl.narrow(1, 0, 4), order);
  auto dy = GeodesicRhs(yl, jet, fused);
  auto widen = [&](const torch::Tensor& t) {
    auto sizes = t.sizes().vec();
    sizes[0] = y.size(0);
    return torch::zeros(sizes, t.options()).index_copy(0, idx, t);
  };
  return {widen(dy), widen(jet.g), widen(jet.dg)};
}

}  // namespace ray

}  // namespace lumpy
