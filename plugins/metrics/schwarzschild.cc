// schwarzschild: a static black hole of mass m at the origin, in isotropic
// Cartesian coordinates (r^2 = x^2 + y^2 + z^2, q = m / (2 r)):
//   ds^2 = -((1 - q)/(1 + q))^2 dt^2 + (1 + q)^4 (dx^2 + dy^2 + dz^2).
// Defined outside the horizon, r > m/2 (in_domain).

#include "lumpy/lumpy.h"

namespace {

class Schwarzschild : public lumpy::AnalyticMetric {
 public:
  explicit Schwarzschild(const lumpy::Params& p) : m_(p.GetDouble("mass")) {}

  torch::Tensor metric(const torch::Tensor& x) override {
    auto q = m_ / (2.0 * Radius(x));
    auto lapse = (1.0 - q) / (1.0 + q);
    auto psi4 = torch::pow(1.0 + q, 4);
    return torch::diag_embed(torch::stack({-lapse.square(), psi4, psi4, psi4}, 1));
  }
  torch::Tensor in_domain(const torch::Tensor& x) override { return Radius(x) > m_ / 2.0; }

 private:
  static torch::Tensor Radius(const torch::Tensor& x) {
    return torch::sqrt(x.narrow(1, 1, 3).square().sum(1));
  }
  double m_;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddMetric(
      "schwarzschild", "Schwarzschild black hole at the origin, isotropic Cartesian coordinates",
      {lumpy::ParamSpec::Double("mass", "mass m (geometric units, 1000 Mpc)").Default(0.1).Greater(0)},
      lumpy::FactoryOf<Schwarzschild>());
}

}  // namespace

LUMPY_PLUGIN(Register)
