// flrw: the flat FLRW metric ds^2 = -dt^2 + a(t)^2 (dx^2 + dy^2 + dz^2), with
// cosmic time shifted so that the observer's t = 1 is today (a = 1 there).
// Units: lengths and times in 1000 Mpc (c = 1); h0 in km/s/Mpc.
//   eds:        a = ((t - t_b) / (1 - t_b))^(2/3),           t_b = 1 - 2/(3 H0)
//   de_sitter:  a = exp(H0 (t - 1))
//   lcdm:       a = (Om/OL)^(1/3) sinh^(2/3)(3/2 sqrt(OL) H0 tau), OL = 1 - Om,
//               tau = t - 1 + tau0, tau0 = asinh(sqrt(OL/Om)) / (3/2 sqrt(OL) H0)
// Before the big bang (eds, lcdm) the metric is undefined: in_domain says so.
// h0 and omega_m may be fitted (h0_trainable, omega_m_trainable): the metric
// is then computed from them as tensors, so gradients reach them.

#include <algorithm>
#include <array>
#include <cmath>

#include "lumpy/lumpy.h"
#include "lumpy/status_macros.h"

namespace {

// km/s/Mpc -> 1/(1000 Mpc): H0 / c * 1000 Mpc.
constexpr double kSpeedOfLightKmS = 299792.458;

class Flrw : public lumpy::AnalyticMetric {
 public:
  explicit Flrw(const lumpy::Params& p)
      : model_(p.GetString("scale_factor")), h0_(p, "h0"), omega_m_(p, "omega_m") {}

  std::vector<lumpy::PhysicalParameter> physical_parameters() override {
    auto all = h0_.parameters();
    for (auto& q : omega_m_.parameters()) all.push_back(q);
    return all;
  }

  // The constants as tensors in t's dtype and device, so that gradients of
  // anything computed from the metric reach h0 and omega_m.
  struct Constants {
    torch::Tensor h, big_bang, rate, tau0, ratio;
  };
  Constants constants(const torch::TensorOptions& options) const {
    Constants c;
    c.h = h0_.value().to(options) * (1000.0 / kSpeedOfLightKmS);
    if (model_ == "eds") {
      c.big_bang = 1.0 - 2.0 / (3.0 * c.h);
    } else if (model_ == "lcdm") {
      auto om = omega_m_.value().to(options);
      auto ol = 1.0 - om;
      c.rate = 1.5 * torch::sqrt(ol) * c.h;
      c.tau0 = torch::asinh(torch::sqrt(ol / om)) / c.rate;
      c.big_bang = 1.0 - c.tau0;
      c.ratio = torch::pow(om / ol, 1.0 / 3.0);
    }
    return c;
  }

  // a, da/dt and d2a/dt2 in closed form (a function of t alone).
  std::array<torch::Tensor, 3> expansion(const torch::Tensor& t) const {
    const Constants c = constants(t.options());
    if (model_ == "eds") {
      auto s = t - c.big_bang;
      auto a = torch::pow(s / (1.0 - c.big_bang), 2.0 / 3.0);
      return {a, (2.0 / 3.0) * a / s, (-2.0 / 9.0) * a / s.square()};
    }
    if (model_ == "de_sitter") {
      auto a = torch::exp(c.h * (t - 1.0));
      return {a, c.h * a, c.h.square() * a};
    }
    auto k_tau = c.rate * (t - 1.0 + c.tau0);
    auto a = c.ratio * torch::pow(torch::sinh(k_tau), 2.0 / 3.0);
    auto coth = 1.0 / torch::tanh(k_tau);
    auto csch2 = 1.0 / torch::sinh(k_tau).square();
    auto da = (2.0 / 3.0) * c.rate * a * coth;
    auto d2a = (2.0 / 3.0) * c.rate * a * c.rate * ((2.0 / 3.0) * coth.square() - csch2);
    return {a, da, d2a};
  }

  // The jet in closed form: only g_ii = a^2 (i = x, y, z) varies, with t:
  // d_t g_ii = 2 a a', d_t d_t g_ii = 2 (a'^2 + a a''). A few operations per
  // point instead of the generic nested-autograd jet (which the tests compare
  // it with): ray tracing in physical mode evaluates it at every stage.
  lumpy::Jet jet(const torch::Tensor& x, int order) override {
    auto [a, da, d2a] = expansion(x.select(1, 0));
    auto spatial = torch::tensor({0.0, 1.0, 1.0, 1.0}, x.options());
    auto diag = [&](const torch::Tensor& v) { return torch::diag_embed(v.unsqueeze(1) * spatial); };
    lumpy::Jet j;
    j.order = std::min(order, 2);
    j.g = diag(a.square()) - torch::diag_embed(torch::ones_like(a).unsqueeze(1) * (1.0 - spatial));
    if (order < 1) return j;
    const int64_t b = x.size(0);
    j.dg = torch::zeros({b, 4, 4, 4}, x.options());
    j.dg.select(3, 0).copy_(diag(2.0 * a * da));
    if (order < 2) return j;
    j.d2g = torch::zeros({b, 4, 4, 4, 4}, x.options());
    j.d2g.select(4, 0).select(3, 0).copy_(diag(2.0 * (da.square() + a * d2a)));
    return j;
  }

  torch::Tensor metric(const torch::Tensor& x) override {
    auto a2 = expansion(x.select(1, 0))[0].square();
    return torch::diag_embed(torch::stack({-torch::ones_like(a2), a2, a2, a2}, 1));
  }

  torch::Tensor in_domain(const torch::Tensor& x) override {
    if (model_ == "de_sitter") return lumpy::MetricModel::in_domain(x);
    torch::NoGradGuard no_grad;
    return x.select(1, 0) > constants(x.options()).big_bang;
  }

 private:
  std::string model_;
  lumpy::PhysicalScalar h0_, omega_m_;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddMetric(
      "flrw",
      "flat FLRW universe (Einstein-de Sitter, de Sitter or flat LCDM), a = 1 at the observer's "
      "t = 1",
      lumpy::Concat({
        {
          ParamSpec::String("scale_factor", "eds: dust only; de_sitter: a = exp(H0 (t-1)); lcdm: "
                                            "dust + Lambda, flat")
              .Default(std::string("lcdm"))
              .OneOf({"eds", "de_sitter", "lcdm"}),
        },
        lumpy::PhysicalScalar::Specs(
            ParamSpec::Double("h0", "Hubble constant today, km/s/Mpc").Default(70.0).Greater(0),
            {50.0, 90.0}, 1000.0),
        lumpy::PhysicalScalar::Specs(
            ParamSpec::Double("omega_m", "matter density today (lcdm; Omega_Lambda = 1 - Omega_m)")
                .Default(0.3)
                .Greater(0)
                .Less(1),
            {0.05, 0.95}, 100.0),
      }),
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::MetricModel>> {
        for (const char* name : {"h0", "omega_m"}) {
          LUMPY_RETURN_IF_ERROR(lumpy::PhysicalScalar::Check(p, name));
        }
        if (p.GetBool("omega_m_trainable") && p.GetString("scale_factor") != "lcdm") {
          return lumpy::ParamError("omega_m_trainable",
                                   "only scale_factor = \"lcdm\" depends on omega_m");
        }
        return std::make_shared<Flrw>(p);
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
