// ltb: the Lemaitre-Tolman-Bondi dust solution, parabolic family (E = 0),
// spherically symmetric about a centre C that need not be the observer
// (docs/physics.md, "An exact lumpy universe").
//
//   ds^2 = -dt^2 + R'^2 dr^2 + R^2 dOmega^2,   r = |x - C|,
//   M(r) = m r^3,   R(t, r) = r (9m/2)^(1/3) (t - t_B(r))^(2/3),
//   t_B(r) = tb0 + A exp(-r^2 / L^2)            (the bang time),
//   4 pi rho = M' / (R^2 R')                   (G = c = 1).
// A < 0: the centre banged earlier (an older, emptier, slower centre: a
// void); A = 0 is Einstein-de Sitter with H0 = 2 / (3 (1 - tb0)) today.
//
// Cartesian form, smooth at r = 0: with X = x - C and s = r^2 = |X|^2,
//   g_ij = P(t, s) delta_ij + Q(t, s) X_i X_j,   g_00 = -1,  g_0i = 0,
//   P = S^2,  S = R / r = c u^(2/3),  c = (9m/2)^(1/3),  u = t - t_B,
//   Q = (R'^2 - S^2) / s = 2 S w + s w^2,  w = S_r / r = (4/3) c u^(-1/3) u_s,
// and u_s = du/ds = A exp(-s/L^2) / L^2. Every function is one of t and s =
// r^2 (never of r): the metric and its jets are analytic at the centre,
// where the radial and angular directions are not defined.
//
// Where it is defined (in_domain): after the bang, u > 0, and before shell
// crossing, R' = c u^(-1/3) (u + (4/3) s u_s) > 0. Elsewhere the jet is not
// finite (a ray's trial step that reaches it is rejected); the probe and
// the experiment's domain check report such points through in_domain.
//
// The jet is closed form: P and Q carry their partial derivatives in (t, s)
// to second order (a two-variable Taylor jet), and the chain rule through
// s = |X|^2 gives the coordinate derivatives (tests compare it with the
// SDK's nested-autograd jet of metric()).

#include <cmath>

#include "absl/strings/str_cat.h"
#include "lumpy/lumpy.h"

namespace {

// A function of (t, s) with its partial derivatives to second order, batched.
struct Taylor2 {
  torch::Tensor v, t, s, tt, ts, ss;

  Taylor2 operator+(const Taylor2& b) const { return {v + b.v, t + b.t, s + b.s, tt + b.tt, ts + b.ts, ss + b.ss}; }
  Taylor2 operator*(double a) const { return {a * v, a * t, a * s, a * tt, a * ts, a * ss}; }
  Taylor2 operator*(const Taylor2& b) const {
    return {v * b.v,
            t * b.v + v * b.t,
            s * b.v + v * b.s,
            tt * b.v + 2 * t * b.t + v * b.tt,
            ts * b.v + t * b.s + s * b.t + v * b.ts,
            ss * b.v + 2 * s * b.s + v * b.ss};
  }
  // f(this) for a scalar function with derivatives f0 = f(v), f1 = f'(v), f2 = f''(v).
  Taylor2 Compose(const torch::Tensor& f0, const torch::Tensor& f1, const torch::Tensor& f2) const {
    return {f0, f1 * t, f1 * s, f2 * t * t + f1 * tt, f2 * t * s + f1 * ts, f2 * s * s + f1 * ss};
  }
  Taylor2 Pow(double p) const {
    return Compose(torch::pow(v, p), p * torch::pow(v, p - 1), p * (p - 1) * torch::pow(v, p - 2));
  }
  Taylor2 Exp() const {
    auto e = torch::exp(v);
    return Compose(e, e, e);
  }
};

class Ltb : public lumpy::MetricModel {
 public:
  explicit Ltb(const lumpy::Params& p)
      : c_(std::cbrt(4.5 * p.GetDouble("m"))),
        tb0_(p.GetDouble("tb0")),
        amplitude_(p.GetDouble("bang_amplitude")),
        width_(p.GetDouble("bang_width")),
        center_(p.GetDoubleList("center")) {}

  // P and Q of the header, with their (t, s) partials, at points x [B,4];
  // X = x - C [B,3].
  struct Fields {
    torch::Tensor X;
    Taylor2 p, q;
  };
  Fields fields(const torch::Tensor& x) const {
    Fields f;
    f.X = x.narrow(1, 1, 3) - torch::tensor(center_, x.options());
    auto zero = torch::zeros_like(x.select(1, 0));
    auto one = torch::ones_like(zero);
    const Taylor2 t{x.select(1, 0), one, zero, zero, zero, zero};
    const Taylor2 s{f.X.square().sum(1), zero, one, zero, zero, zero};
    const double l2 = width_ * width_;
    const Taylor2 e = (s * (-1.0 / l2)).Exp();
    const Taylor2 u = t + e * (-amplitude_) + Taylor2{torch::full_like(zero, -tb0_), zero, zero, zero, zero, zero};
    const Taylor2 du_ds = e * (amplitude_ / l2);
    const Taylor2 big_s = u.Pow(2.0 / 3.0) * c_;
    const Taylor2 w = u.Pow(-1.0 / 3.0) * du_ds * (4.0 / 3.0 * c_);
    f.p = big_s * big_s;
    f.q = big_s * w * 2.0 + s * w * w;
    return f;
  }

  lumpy::Jet jet(const torch::Tensor& x, int order) override {
    const Fields f = fields(x);
    const auto& X = f.X;
    const int64_t b = x.size(0);
    auto eye3 = torch::eye(3, x.options());
    auto xx = X.unsqueeze(2) * X.unsqueeze(1);                                       // [B,3,3] X_i X_j
    auto spatial = [&](const torch::Tensor& p, const torch::Tensor& q) {              // p d_ij + q X_i X_j
      return p.view({-1, 1, 1}) * eye3 + q.view({-1, 1, 1}) * xx;
    };
    // sym[b,i,j,k] = d_ik X_j + d_jk X_i
    auto sym = torch::einsum("ik,bj->bijk", {eye3, X}) + torch::einsum("jk,bi->bijk", {eye3, X});
    lumpy::Jet j;
    j.order = std::min(order, 2);
    j.g = torch::zeros({b, 4, 4}, x.options());
    j.g.select(1, 0).select(1, 0).fill_(-1.0);
    j.g.narrow(1, 1, 3).narrow(2, 1, 3).copy_(spatial(f.p.v, f.q.v));
    if (order < 1) return j;
    using torch::indexing::Slice;
    j.dg = torch::zeros({b, 4, 4, 4}, x.options());
    auto dg = j.dg.narrow(1, 1, 3).narrow(2, 1, 3);  // [B,3,3,4]
    dg.select(3, 0).copy_(spatial(f.p.t, f.q.t));
    // d_k g_ij = 2 X_k (P_s d_ij + Q_s X_i X_j) + Q sym_ijk
    dg.narrow(3, 1, 3).copy_(2.0 * spatial(f.p.s, f.q.s).unsqueeze(3) * X.view({-1, 1, 1, 3}) +
                             f.q.v.view({-1, 1, 1, 1}) * sym);
    if (order < 2) return j;
    j.d2g = torch::zeros({b, 4, 4, 4, 4}, x.options());
    auto d2 = j.d2g.narrow(1, 1, 3).narrow(2, 1, 3);  // [B,3,3,4,4]
    d2.select(4, 0).select(3, 0).copy_(spatial(f.p.tt, f.q.tt));
    // d_t d_k g_ij = 2 X_k (P_ts d_ij + Q_ts X_i X_j) + Q_t sym_ijk
    auto mixed = 2.0 * spatial(f.p.ts, f.q.ts).unsqueeze(3) * X.view({-1, 1, 1, 3}) +
                 f.q.t.view({-1, 1, 1, 1}) * sym;
    d2.select(3, 0).narrow(3, 1, 3).copy_(mixed);
    d2.select(4, 0).narrow(3, 1, 3).copy_(mixed);
    // d_k d_l g_ij = 4 X_k X_l (P_ss d_ij + Q_ss X_i X_j) + 2 d_kl (P_s d_ij + Q_s X_i X_j)
    //              + 2 Q_s (X_k sym_ijl + X_l sym_ijk) + Q (d_ik d_jl + d_jk d_il)
    auto xk_xl = xx.view({-1, 1, 1, 3, 3});
    auto pair = torch::einsum("ik,jl->ijkl", {eye3, eye3}) + torch::einsum("jk,il->ijkl", {eye3, eye3});
    auto xk_sym_l = X.view({-1, 1, 1, 3, 1}) * sym.unsqueeze(3);  // X_k sym_ijl
    auto space = 4.0 * spatial(f.p.ss, f.q.ss).view({-1, 3, 3, 1, 1}) * xk_xl +
                 2.0 * spatial(f.p.s, f.q.s).view({-1, 3, 3, 1, 1}) * eye3.view({1, 1, 1, 3, 3}) +
                 2.0 * f.q.s.view({-1, 1, 1, 1, 1}) * (xk_sym_l + xk_sym_l.transpose(3, 4)) +
                 f.q.v.view({-1, 1, 1, 1, 1}) * pair;
    d2.narrow(3, 1, 3).narrow(4, 1, 3).copy_(space);
    return j;
  }

  torch::Tensor in_domain(const torch::Tensor& x) override {
    torch::NoGradGuard no_grad;
    auto X = x.narrow(1, 1, 3) - torch::tensor(center_, x.options());
    auto s = X.square().sum(1);
    const double l2 = width_ * width_;
    auto e = torch::exp(-s / l2);
    auto u = x.select(1, 0) - tb0_ - amplitude_ * e;
    // R' > 0: u + (4/3) s u_s > 0 with u_s = A e / L^2.
    return (u > 0) & (u + (4.0 / 3.0) * s * amplitude_ * e / l2 > 0);
  }

 private:
  double c_, tb0_, amplitude_, width_;
  std::vector<double> center_;
};

// Einstein-de Sitter with H0 = 70 km/s/Mpc in units of 1000 Mpc: the bang
// at t = 1 - 2 / (3 H0), and m such that R = r at the observer's t = 1.
constexpr double kH0 = 70.0 / 299792.458 * 1000.0;
const double kTb0 = 1.0 - 2.0 / (3.0 * kH0);
const double kM = 2.0 / (9.0 * (1.0 - kTb0) * (1.0 - kTb0));

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddMetric(
      "ltb",
      "Lemaitre-Tolman-Bondi dust (parabolic, E = 0): M = m r^3 and bang time tb0 + A exp(-r^2/L^2) "
      "about a centre; exact, inhomogeneous, defined after the bang and before shell crossing",
      {
          ParamSpec::Double("m", absl::StrCat("mass function M = m r^3 (units of 1000 Mpc); default: R = r "
                                              "at t = 1 for A = 0 and the default tb0 (", kM, ")"))
              .Default(kM)
              .Greater(0),
          ParamSpec::Double("tb0", absl::StrCat("bang time far from the centre; default: Einstein-de Sitter "
                                                "with H0 = 70 km/s/Mpc today (", kTb0, ")"))
              .Default(kTb0)
              .Less(1),
          ParamSpec::Double("bang_amplitude", "A: the bang time's excess at the centre (A < 0: an older, "
                                              "underdense centre; 0: Einstein-de Sitter)")
              .Default(0.0),
          ParamSpec::Double("bang_width", "L: the bang-time profile's width (units of 1000 Mpc)")
              .Default(0.5)
              .Greater(0),
          ParamSpec::DoubleList("center", "the centre of symmetry (x, y, z); need not be the observer's "
                                          "position ([observer] event)")
              .Default(std::vector<double>{0.0, 0.0, 0.0})
              .Length(3),
      },
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::MetricModel>> {
        // Whether the observer's event lies after the bang and before shell
        // crossing is the engine's check ([observer] event, in_domain).
        return std::make_shared<Ltb>(p);
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
