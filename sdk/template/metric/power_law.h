#pragma once
// power_law: a flat universe whose scale factor is a power of time,
//   ds^2 = -dt^2 + a(t)^2 (dx^2 + dy^2 + dz^2),
//   a(t) = ((t - t_b) / (1 - t_b))^p,   t_b = 1 - p / H0,
// so that the observer at t = 1 sees a = 1 and a'/a = H0 (units: 1000 Mpc,
// c = 1; H0 in km/s/Mpc). p = 2/3 is Einstein-de Sitter (dust), p = 1/2
// radiation; p > 1 accelerates. The exponent may be fitted (p_trainable).
// Copy this folder to start your own metric: rename the class, the plugin
// name and the files, change Expansion() (or the whole jet()).

#include <lumpy/lumpy.h>

#include <array>

namespace power_law {

class PowerLaw : public lumpy::MetricModel {
 public:
  explicit PowerLaw(const lumpy::Params& params);

  // The jet in closed form: only g_xx = g_yy = g_zz = a^2 varies, with t:
  //   d_t g_ii = 2 a a',   d_t d_t g_ii = 2 (a'^2 + a a'').
  lumpy::Jet jet(const torch::Tensor& x, int order) override;
  // Before the big bang (t <= t_b) the metric is undefined.
  torch::Tensor in_domain(const torch::Tensor& x) override;
  std::vector<lumpy::PhysicalParameter> physical_parameters() override { return p_.parameters(); }

  // a, a' and a'' at times t [B], as tensors of p (so gradients reach it).
  std::array<torch::Tensor, 3> Expansion(const torch::Tensor& t) const;

 private:
  double hubble_;  // H0 in 1/(1000 Mpc)
  lumpy::PhysicalScalar p_;
};

// Declares the parameters and adds the plugin to a registry.
absl::Status Register(lumpy::Registry& registry);

}  // namespace power_law
