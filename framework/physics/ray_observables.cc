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

Observables Observe(const torch::Tensor& s, const torch::Tensor& g, const Redshift& redshift) {
  Observables out;
  out.one_plus_z = redshift(g, s.narrow(1, 4, 4));
  if (!redshift.physical) {
    auto r = SqrtOrZero(s.narrow(1, 1, 3).square().sum(1));
    out.luminosity = out.one_plus_z * r * 1000.0;
    out.angular = out.luminosity / out.one_plus_z.square();
    return out;
  }
  auto xi1 = s.narrow(1, 8, 4), xi2 = s.narrow(1, 16, 4);
  auto gx1 = torch::bmm(g, xi1.unsqueeze(2)).squeeze(2), gx2 = torch::bmm(g, xi2.unsqueeze(2)).squeeze(2);
  auto g11 = (xi1 * gx1).sum(1), g22 = (xi2 * gx2).sum(1), g12 = (xi1 * gx2).sum(1);
  auto det = (g11 * g22 - g12 * g12).clamp_min(0);
  out.angular = SqrtOrZero(SqrtOrZero(det)) * 1000.0;
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
