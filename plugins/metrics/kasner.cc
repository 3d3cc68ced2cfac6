// kasner: ds^2 = -dt^2 + t^(2 p1) dx^2 + t^(2 p2) dy^2 + t^(2 p3) dz^2, t > 0.
// A vacuum solution (R_mn = 0) exactly when p1 + p2 + p3 = p1^2 + p2^2 + p3^2 = 1;
// other exponents are allowed (an anisotropic, non-vacuum test spacetime).

#include "lumpy/lumpy.h"

namespace {

class Kasner : public lumpy::AnalyticMetric {
 public:
  explicit Kasner(const lumpy::Params& p)
      : p_{p.GetDouble("p1"), p.GetDouble("p2"), p.GetDouble("p3")} {}

  torch::Tensor metric(const torch::Tensor& x) override {
    auto t = x.select(1, 0);
    return torch::diag_embed(torch::stack({-torch::ones_like(t), torch::pow(t, 2 * p_[0]),
                                           torch::pow(t, 2 * p_[1]), torch::pow(t, 2 * p_[2])},
                                          1));
  }
  torch::Tensor in_domain(const torch::Tensor& x) override { return x.select(1, 0) > 0; }

 private:
  double p_[3];
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddMetric(
      "kasner", "Kasner spacetime (t > 0); vacuum when sum p = sum p^2 = 1",
      {
          ParamSpec::Double("p1", "exponent of x").Default(-1.0 / 3.0),
          ParamSpec::Double("p2", "exponent of y").Default(2.0 / 3.0),
          ParamSpec::Double("p3", "exponent of z").Default(2.0 / 3.0),
      },
      lumpy::FactoryOf<Kasner>());
}

}  // namespace

LUMPY_PLUGIN(Register)
