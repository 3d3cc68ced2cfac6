// flrw: the flat FLRW metric ds^2 = -dt^2 + a(t)^2 (dx^2 + dy^2 + dz^2), with
// cosmic time shifted so that the observer's t = 1 is today (a = 1 there).
// Units: lengths and times in 1000 Mpc (c = 1); h0 in km/s/Mpc.
//   eds:        a = ((t - t_b) / (1 - t_b))^(2/3),           t_b = 1 - 2/(3 H0)
//   de_sitter:  a = exp(H0 (t - 1))
//   lcdm:       a = (Om/OL)^(1/3) sinh^(2/3)(3/2 sqrt(OL) H0 tau), OL = 1 - Om,
//               tau = t - 1 + tau0, tau0 = asinh(sqrt(OL/Om)) / (3/2 sqrt(OL) H0)
// Before the big bang (eds, lcdm) the metric is undefined: in_domain says so.

#include <cmath>

#include "lumpy/lumpy.h"

namespace {

// km/s/Mpc -> 1/(1000 Mpc): H0 / c * 1000 Mpc.
constexpr double kSpeedOfLightKmS = 299792.458;

class Flrw : public lumpy::AnalyticMetric {
 public:
  explicit Flrw(const lumpy::Params& p)
      : model_(p.GetString("scale_factor")),
        h0_(p.GetDouble("h0") * 1000.0 / kSpeedOfLightKmS),
        omega_m_(p.GetDouble("omega_m")) {
    const double ol = 1.0 - omega_m_;
    if (model_ == "eds") {
      big_bang_ = 1.0 - 2.0 / (3.0 * h0_);
    } else if (model_ == "lcdm") {
      rate_ = 1.5 * std::sqrt(ol) * h0_;
      tau0_ = std::asinh(std::sqrt(ol / omega_m_)) / rate_;
      big_bang_ = 1.0 - tau0_;
    }
  }

  torch::Tensor scale_factor(const torch::Tensor& t) const {
    if (model_ == "eds") return torch::pow((t - big_bang_) / (1.0 - big_bang_), 2.0 / 3.0);
    if (model_ == "de_sitter") return torch::exp(h0_ * (t - 1.0));
    const double ratio = std::cbrt(omega_m_ / (1.0 - omega_m_));
    return ratio * torch::pow(torch::sinh(rate_ * (t - 1.0 + tau0_)), 2.0 / 3.0);
  }

  torch::Tensor metric(const torch::Tensor& x) override {
    auto a2 = scale_factor(x.select(1, 0)).square();
    return torch::diag_embed(torch::stack({-torch::ones_like(a2), a2, a2, a2}, 1));
  }

  torch::Tensor in_domain(const torch::Tensor& x) override {
    if (model_ == "de_sitter") return lumpy::MetricModel::in_domain(x);
    return x.select(1, 0) > big_bang_;
  }

 private:
  std::string model_;
  double h0_, omega_m_;
  double big_bang_ = -INFINITY, rate_ = 0, tau0_ = 0;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddMetric(
      "flrw",
      "flat FLRW universe (Einstein-de Sitter, de Sitter or flat LCDM), a = 1 at the observer's "
      "t = 1",
      {
          ParamSpec::String("scale_factor", "eds: dust only; de_sitter: a = exp(H0 (t-1)); lcdm: "
                                            "dust + Lambda, flat")
              .Default(std::string("lcdm"))
              .OneOf({"eds", "de_sitter", "lcdm"}),
          ParamSpec::Double("h0", "Hubble constant today, km/s/Mpc").Default(70.0).Greater(0),
          ParamSpec::Double("omega_m", "matter density today (lcdm; Omega_Lambda = 1 - Omega_m)")
              .Default(0.3)
              .Greater(0)
              .Less(1),
      },
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::MetricModel>> {
        return std::make_shared<Flrw>(p);
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
