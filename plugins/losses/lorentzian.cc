// lorentzian: the metric keeps the signature (-,+,+,+) with t timelike and
// the t = const slices spacelike, which is what the ray tracer needs to go on
// (ray_tracer.h: det g < 0 with a positive-definite spatial metric). With
// gamma_ij positive definite, g is Lorentzian exactly when the lapse squared
//   N^2 = beta^T gamma^-1 beta - g_00   (beta_i = g_0i; N^2 = -1/g^00)
// is positive. The violation per point is the margin by which either fails:
//   v = max(0, tolerance - lambda_min(gamma)) + max(0, tolerance - N^2),
// 0 while both stay at least `tolerance` inside the cone. It is a
// constraint: any handler enforces it, on any domain. The SIREN's output map
// already keeps g_00 < 0 and g_ii > 0; the off-diagonal terms are what can
// break the signature.

#include "lumpy/lumpy.h"

namespace {

class Lorentzian : public lumpy::LossTerm {
 public:
  explicit Lorentzian(const lumpy::Params& p) : tolerance_(p.GetDouble("tolerance")) {}

  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    auto v = Violation(ctx.geometry(0).metric());
    return {v, v.mean()};
  }

  torch::Tensor Violation(const torch::Tensor& g) const {
    auto gamma = g.narrow(1, 1, 3).narrow(2, 1, 3);
    auto beta = g.select(1, 0).narrow(1, 1, 3);  // g_0i
    // One eigen-decomposition gives both: lambda_min, and beta^T gamma^-1
    // beta = sum_k (v_k . beta)^2 / lambda_k, finite for any gamma (where
    // gamma is not positive definite the first margin already says so).
    auto [lambda, vectors] = torch::linalg_eigh(gamma);
    auto lambda_min = lambda.select(1, 0);
    auto projected = torch::matmul(vectors.transpose(1, 2), beta.unsqueeze(2)).squeeze(2);
    auto shift = (projected.square() / lambda.clamp_min(1e-12)).sum(1);
    auto lapse2 = shift - g.select(1, 0).select(1, 0);
    return torch::relu(tolerance_ - lambda_min) + torch::relu(tolerance_ - lapse2);
  }

 private:
  double tolerance_;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddLoss(
      "lorentzian",
      "signature (-,+,+,+) with t timelike and spacelike slices: violation max(0, tol - lambda_min(gamma)) "
      "+ max(0, tol - N^2) per point",
      lumpy::LossKind::kConstraint,
      {lumpy::ParamSpec::Double("tolerance",
                                "how far inside the cone each margin must stay (the smallest eigenvalue "
                                "of gamma_ij and the lapse squared)")
           .Default(1e-2)
           .AtLeast(0)},
      lumpy::FactoryOf<Lorentzian>());
}

}  // namespace

LUMPY_PLUGIN(Register)
