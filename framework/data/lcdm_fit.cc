#include "data/lcdm_fit.h"

#include <cmath>

namespace lumpy {
namespace {

constexpr double kSpeedOfLight = 299792.458;  // km/s
constexpr int64_t kIntervals = 1 << 16;

// c int_0^z dz'/E(z') in km/s (H0 = 1), at each z [N], on a grid to z_top.
torch::Tensor ComovingIntegral(const torch::Tensor& z, double omega_m, double z_top) {
  auto grid = torch::linspace(0.0, z_top, kIntervals + 1, torch::kFloat64);
  auto f = 1.0 / torch::sqrt(omega_m * torch::pow(1.0 + grid, 3) + (1.0 - omega_m));
  auto dc = torch::cat({torch::zeros({1}, torch::kFloat64),
                        torch::cumsum(0.5 * (f.narrow(0, 1, kIntervals) + f.narrow(0, 0, kIntervals)), 0) *
                            (z_top / kIntervals)});
  auto x = z / z_top * kIntervals;
  auto i = x.floor().clamp(0, kIntervals - 1).to(torch::kLong);
  auto u = x - i.to(torch::kFloat64);
  return (dc.index({i}) * (1 - u) + dc.index({i + 1}) * u) * kSpeedOfLight;
}

}  // namespace

torch::Tensor FlatLcdmDistanceModulus(const torch::Tensor& z_in, double h0, double omega_m) {
  auto z = z_in.to(torch::kFloat64);
  auto d = (1.0 + z) * ComovingIntegral(z, omega_m, z.max().item<double>() * 1.0001) / h0;
  return 5.0 * torch::log10(d) + 25.0;
}

LcdmFit FitFlatLcdm(const torch::Tensor& z_in, const torch::Tensor& mu_in, const Chi2Of& chi2) {
  auto z = z_in.to(torch::kFloat64), mu = mu_in.to(torch::kFloat64);
  const double z_top = z.max().item<double>() * 1.0001;
  auto ones = torch::ones_like(mu);
  const double q1 = chi2(ones);
  // chi^2 at Om with the best offset b (written to *b_out).
  auto at = [&](double om, double* b_out) {
    auto model = 5.0 * torch::log10((1.0 + z) * ComovingIntegral(z, om, z_top)) + 25.0;  // H0 = 1
    auto r = mu - model;
    const double b = (chi2(r + ones) - chi2(r) - q1) / (2 * q1);
    if (b_out) *b_out = b;
    return chi2(r - b);
  };
  const double golden = (std::sqrt(5.0) - 1) / 2;
  double lo = 0.01, hi = 0.99;
  double a = hi - golden * (hi - lo), c = lo + golden * (hi - lo);
  double fa = at(a, nullptr), fc = at(c, nullptr);
  while (hi - lo > 1e-10) {
    if (fa < fc) {
      hi = c, c = a, fc = fa;
      a = hi - golden * (hi - lo);
      fa = at(a, nullptr);
    } else {
      lo = a, a = c, fa = fc;
      c = lo + golden * (hi - lo);
      fc = at(c, nullptr);
    }
  }
  LcdmFit fit;
  fit.omega_m = 0.5 * (lo + hi);
  double b = 0;
  fit.chi2 = at(fit.omega_m, &b);
  fit.h0 = std::pow(10.0, -b / 5.0);
  return fit;
}

LcdmFit FitFlatLcdm(const SupernovaCatalogue& cat) {
  return FitFlatLcdm(cat.z, cat.mu, [&](const torch::Tensor& r) { return cat.Chi2(r).item<double>(); });
}

}  // namespace lumpy
