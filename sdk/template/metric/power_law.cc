#include "power_law.h"

#include <algorithm>
#include "lumpy/status_macros.h"

namespace power_law {
namespace {
constexpr double kSpeedOfLightKmS = 299792.458;
}  // namespace

PowerLaw::PowerLaw(const lumpy::Params& params)
    : hubble_(params.GetDouble("h0") * 1000.0 / kSpeedOfLightKmS), p_(params, "p") {}

std::array<torch::Tensor, 3> PowerLaw::Expansion(const torch::Tensor& t) const {
  auto p = p_.value().to(t.options());
  auto big_bang = 1.0 - p / hubble_;
  auto s = t - big_bang;                         // time since the big bang
  auto a = torch::pow(s / (1.0 - big_bang), p);  // a(1) = 1
  auto da = p * a / s;
  auto d2a = p * (p - 1.0) * a / s.square();
  return {a, da, d2a};
}

lumpy::Jet PowerLaw::jet(const torch::Tensor& x, int order) {
  auto [a, da, d2a] = Expansion(x.select(1, 0));
  // diag(0, v, v, v) for a per-point v [B].
  auto spatial = torch::tensor({0.0, 1.0, 1.0, 1.0}, x.options());
  auto diag = [&](const torch::Tensor& v) { return torch::diag_embed(v.unsqueeze(1) * spatial); };
  const int64_t b = x.size(0);
  lumpy::Jet jet;
  jet.order = std::min(order, 2);
  jet.g = diag(a.square());
  jet.g.select(1, 0).select(1, 0).fill_(-1.0);
  if (order >= 1) {  // dg[b,i,j,k] = d_k g_ij: only k = t
    jet.dg = torch::zeros({b, 4, 4, 4}, x.options());
    jet.dg.select(3, 0).copy_(diag(2.0 * a * da));
  }
  if (order >= 2) {  // d2g[b,i,j,k,l] = d_k d_l g_ij: only k = l = t
    jet.d2g = torch::zeros({b, 4, 4, 4, 4}, x.options());
    jet.d2g.select(4, 0).select(3, 0).copy_(diag(2.0 * (da.square() + a * d2a)));
  }
  return jet;
}

torch::Tensor PowerLaw::in_domain(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return x.select(1, 0) > 1.0 - p_.value().item<double>() / hubble_;
}

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddMetric(
      "power_law", "flat universe with a(t) proportional to (t - t_b)^p, a = 1 and a'/a = H0 at t = 1",
      lumpy::Concat({
          {ParamSpec::Double("h0", "Hubble constant today, km/s/Mpc").Default(70.0).Greater(0)},
          // p, p_trainable, p_bounds, p_lr_factor: the one way to declare a
          // fitted physical scalar (see <lumpy/physical_parameter.h>).
          lumpy::PhysicalScalar::Specs(
              ParamSpec::Double("p", "the exponent: 2/3 dust, 1/2 radiation, > 1 accelerating")
                  .Default(2.0 / 3.0)
                  .Greater(0),
              {0.2, 3.0}, 100.0),
      }),
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::MetricModel>> {
        LUMPY_RETURN_IF_ERROR(lumpy::PhysicalScalar::Check(p, "p"));
        return std::make_shared<PowerLaw>(p);
      });
}

}  // namespace power_law

LUMPY_PLUGIN(power_law::Register)
