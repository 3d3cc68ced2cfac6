#include "physics/ray_observables.h"

#include "physics/geodesic_rhs.h"

namespace lumpy::ray {

torch::Tensor Redshift::operator()(const torch::Tensor& g, const torch::Tensor& k) const {
  auto n = torch::sqrt(g.select(1, 0).select(1, 0).abs());
  if (!physical) return n * k.select(1, 0) / e_obs;
  // u^mu = (1/N, 0,0,0): -u.k = -g_0v k^v / N.
  return -(g.select(1, 0) * k).sum(1) / n;
}
torch::Tensor Redshift::Rate(const torch::Tensor& g, const torch::Tensor& dg, const torch::Tensor& k,
                           const torch::Tensor& kdot) const {
  auto g00 = g.select(1, 0).select(1, 0);
  auto n = torch::sqrt(g00.abs());
  auto dg00 = (dg.select(1, 0).select(1, 0) * k).sum(1);  // d g00 / dl
  auto dn = torch::sign(g00) * dg00 / (2.0 * n);
  if (!physical) return (dn * k.select(1, 0) + n * kdot.select(1, 0)) / e_obs;  // f = N k^0 / E_obs
  // f = -a / N, a = g_0v k^v.
  auto a = (g.select(1, 0) * k).sum(1);
  auto da = torch::einsum("rvp,rp,rv->r", {dg.select(1, 0), k, k}) + (g.select(1, 0) * kdot).sum(1);
  return -(da * n - a * dn) / n.square();
}

torch::Tensor SqrtOrZero(const torch::Tensor& x) {
  auto positive = x > 0;
  return torch::where(positive, torch::sqrt(torch::where(positive, x, torch::ones_like(x))),
                      torch::zeros_like(x));
}

torch::Tensor Redshift::CoordinateDistance(const torch::Tensor& s, double soft) const {
  auto r2 = (s.narrow(1, 1, 3) - origin.to(s.options()).view({1, 3})).square().sum(1);
  return soft > 0 ? torch::sqrt(r2 + soft) : SqrtOrZero(r2);
}

// The bundle's cross-section: project each Jacobi vector on the source's
// screen (orthogonal to u and to k: xi carries an arbitrary multiple of k,
// which the projection removes), then the area of the parallelogram the two
// screen vectors span as |a| |b_perp|, b_perp = b - (b.a) a / |a|^2. The
// Gram determinant |a|^2 |b|^2 - (a.b)^2 gives the same number in exact
// arithmetic but squares the bundle's conditioning (|a||b| / area): a
// strongly sheared bundle (conditioning 1e4) lost every digit of it in
// float32, the determinant came out <= 0, D_A = 0 and mu = -infinity. As
// |a| |b_perp| it keeps a relative precision of eps x conditioning.
torch::Tensor BundleArea(const torch::Tensor& s, const torch::Tensor& g) {
  auto dot = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return (a * torch::bmm(g, b.unsqueeze(2)).squeeze(2)).sum(1);
  };
  auto k = s.narrow(1, 4, 4);
  // The comoving source u^mu = delta^mu_0 / N, and the direction of the ray in
  // its rest frame, d = k / E - u with E = -u.k (u.u = -1, d.d = 1, u.d = 0).
  auto u = torch::zeros_like(k);
  u.select(1, 0).copy_(1.0 / torch::sqrt(-g.select(1, 0).select(1, 0)));
  auto e = -dot(u, k);
  auto d = k / e.unsqueeze(1) - u;
  auto screen = [&](const torch::Tensor& v) {
    return v + dot(u, v).unsqueeze(1) * u - dot(d, v).unsqueeze(1) * d;
  };
  auto a = screen(s.narrow(1, 8, 4)), b = screen(s.narrow(1, 16, 4));
  auto aa = dot(a, a);
  auto b_perp = b - (dot(b, a) / torch::where(aa > 0, aa, torch::ones_like(aa))).unsqueeze(1) * a;
  return SqrtOrZero(aa) * SqrtOrZero(dot(b_perp, b_perp));
}

Observables Observe(const torch::Tensor& s, const torch::Tensor& g, const Redshift& redshift) {
  Observables out;
  out.one_plus_z = redshift(g, s.narrow(1, 4, 4));
  if (!redshift.physical) {
    out.luminosity = out.one_plus_z * redshift.CoordinateDistance(s) * 1000.0;
    out.angular = out.luminosity / out.one_plus_z.square();
    return out;
  }
  out.angular = SqrtOrZero(BundleArea(s, g)) * 1000.0;
  out.luminosity = out.one_plus_z.square() * out.angular;
  return out;
}

torch::Tensor HubbleDistance(MetricModel& metric, const torch::Tensor& s, const Redshift& redshift,
                             bool fused) {
  auto k = s.narrow(1, 4, 4);
  Rhs at = Derivative(metric, s.narrow(1, 0, 8), fused);  // the geodesic alone: dk/dl and the jet
  auto f = redshift(at.g, k);  // 1 + z
  auto df = redshift.Rate(at.g, at.dg, k, at.dy.narrow(1, 4, 4));
  auto e_obs = redshift.physical ? torch::ones({}, s.options()) : redshift.e_obs;
  return -f.square() * e_obs / df * 1000.0;
}

torch::Tensor RedshiftAt(MetricModel& metric, const torch::Tensor& s, const Redshift& redshift) {
  return redshift(metric.jet(s.narrow(1, 0, 4), 0).g, s.narrow(1, 4, 4)) - 1.0;
}

}  // namespace lumpy::ray
