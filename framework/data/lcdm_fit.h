#pragma once
// Flat LCDM fitted to supernovae in closed form (no ray tracing): the
// baseline every learned metric is judged against.
//
// mu = 5 log10(d_L / Mpc) + 25 with d_L = (1 + z) (c / H0) int_0^z dz' / E(z'),
// E = sqrt(Om (1+z)^3 + 1 - Om). For fixed Om the best offset b = -5 log10 H0
// solves a quadratic (the chi^2 is a quadratic form q: q(r - b 1) is smallest
// at b = (q(r + 1) - q(r) - q(1)) / (2 q(1)), diagonal errors or covariance
// alike); Om by golden section on [0.01, 0.99] to 1e-10. The integral: a
// cumulative trapezoid on 2^16 intervals, linear between nodes (relative
// error ~1e-9). Seconds for the whole catalogue.

#include <torch/torch.h>

#include <functional>

#include "engine_export.h"
#include "lumpy/supernovae.h"

namespace lumpy {

struct LcdmFit {
  double h0 = 0, omega_m = 0, chi2 = 0;
};

// chi2(r): the data's chi^2 of residuals r = mu_model - mu_obs [N] (float64).
using Chi2Of = std::function<double(const torch::Tensor& residual)>;

// The best fit to (z, mu) [N] float64 under chi2.
LUMPY_ENGINE_API LcdmFit FitFlatLcdm(const torch::Tensor& z, const torch::Tensor& mu, const Chi2Of& chi2);
// The catalogue's own chi^2 (diagonal errors or its covariance).
LUMPY_ENGINE_API LcdmFit FitFlatLcdm(const SupernovaCatalogue& catalogue);

// The model's distance modulus at redshifts z [N] float64.
LUMPY_ENGINE_API torch::Tensor FlatLcdmDistanceModulus(const torch::Tensor& z, double h0, double omega_m);

}  // namespace lumpy
