// homoscedastic (Kendall, Gal & Cipolla 2018): a learned s = log sigma per
// term; per point  1/2 e^(-2s) * l(v) + s, with l(v) = v^2 (`base` =
// "quadratic") or v ("linear"). Minimising over s alone gives e^(2s) = mean
// l, so the penalty can always be lowered by inflating sigma instead of
// satisfying the constraint: the "lazy optimizer" failure of the blog, which
// an ablation must be able to show.

#include "lumpy/lumpy.h"

namespace {

class Homoscedastic : public lumpy::ConstraintHandler {
 public:
  explicit Homoscedastic(const lumpy::Params& p)
      : quadratic_(p.GetString("base") == "quadratic"),
        log_sigma_(register_parameter("log_sigma", torch::tensor(p.GetDouble("log_sigma0"), torch::kFloat64))) {}

  lumpy::Penalty penalty(const torch::Tensor& v) override {
    auto s = log_sigma_.to(v.dtype());
    auto l = quadratic_ ? v.square() : v;
    auto per_point = 0.5 * torch::exp(-2.0 * s) * l + s;
    return {per_point, per_point.mean()};
  }

  std::vector<std::pair<std::string, double>> telemetry() const override {
    return {{"log_sigma", log_sigma_.item<double>()}};
  }

 private:
  bool quadratic_;
  torch::Tensor log_sigma_;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddConstraint(
      "homoscedastic", "learned uncertainty weighting: 1/2 e^(-2s) l(v) + s, s = log sigma trained",
      {ParamSpec::Double("log_sigma0", "initial s = log sigma").Default(0.0).AtLeast(-20).AtMost(20),
       ParamSpec::String("base", "l(v): quadratic (v^2) or linear (v)")
           .Default(std::string("quadratic"))
           .OneOf({"quadratic", "linear"})},
      lumpy::FactoryOf<Homoscedastic>());
}

}  // namespace

LUMPY_PLUGIN(Register)
