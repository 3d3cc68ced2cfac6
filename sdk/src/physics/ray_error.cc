#include "physics/ray_error.h"

#include <algorithm>
#include <cmath>

#include "physics/geodesic_rhs.h"

namespace lumpy {

std::pair<int64_t, int64_t> ErrorVector(int64_t i) {
  if (i >= 8) return {i / 4 * 4, i / 4 * 4 + 4};  // a Jacobi vector or its derivative
  if (i % 4 == 0) return {i, i + 1};              // t or k^0
  return {i / 4 * 4 + 1, i / 4 * 4 + 4};          // spatial x or k
}

std::vector<double> ErrorNorms(const torch::Tensor& y, const torch::Tensor& y_new,
                               const std::vector<torch::Tensor>& k, const std::vector<double>& e,
                               double h, double rtol, double atol, bool fused) {
  torch::NoGradGuard no_grad;
  const int64_t rays = y.size(0), dim = y.size(1);
  std::vector<double> out(rays, 0.0);
  if (!RayFusedApplies(y, fused)) {
    torch::Tensor err;
    for (size_t j = 0; j < k.size(); ++j) {
      if (e[j] != 0) err = err.defined() ? err + e[j] * k[j] : e[j] * k[j];
    }
    auto size = torch::max(y.abs(), y_new.abs());
    std::vector<torch::Tensor> scale;
    for (int64_t i = 0; i < dim;) {
      const auto [begin, end] = ErrorVector(i);
      auto m = size.narrow(1, begin, end - begin).amax(1, true);
      scale.push_back((atol + rtol * m).expand({rays, end - begin}));
      i = end;
    }
    auto er = (h * err).abs().div(torch::cat(scale, 1)).amax(1);
    auto finite = torch::ones_like(er, torch::kBool);
    for (const auto& kj : k) finite = finite & torch::isfinite(kj).all(1);
    er = torch::where(finite, er, torch::full_like(er, INFINITY)).to(torch::kCPU, torch::kFloat64);
    std::copy(er.data_ptr<double>(), er.data_ptr<double>() + rays, out.begin());
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "ray_error_norms", [&] {
    auto yc = y.contiguous(), nc = y_new.contiguous();
    std::vector<torch::Tensor> kc;
    for (const auto& kj : k) kc.push_back(kj.contiguous());
    const scalar_t* y0 = yc.data_ptr<scalar_t>();
    const scalar_t* y1 = nc.data_ptr<scalar_t>();
    std::vector<const scalar_t*> kp;
    for (const auto& kj : kc) kp.push_back(kj.data_ptr<scalar_t>());
    std::vector<double> err(dim);
    for (int64_t r = 0; r < rays; ++r) {
      double worst = 0.0;
      for (int64_t i = 0; i < dim && std::isfinite(worst); ++i) {
        double sum = 0.0;
        for (size_t j = 0; j < kp.size(); ++j) {
          const double kv = static_cast<double>(kp[j][r * dim + i]);
          if (!std::isfinite(kv)) sum = INFINITY;
          else sum += e[j] * kv;
        }
        err[i] = std::abs(h * sum);
        worst = std::isfinite(err[i]) ? worst : INFINITY;
      }
      for (int64_t i = 0; i < dim && std::isfinite(worst);) {
        const auto [begin, end] = ErrorVector(i);
        double m = 0.0;
        for (int64_t c = begin; c < end; ++c) {
          m = std::max({m, std::abs(static_cast<double>(y0[r * dim + c])),
                        std::abs(static_cast<double>(y1[r * dim + c]))});
        }
        for (int64_t c = begin; c < end; ++c) worst = std::max(worst, err[c] / (atol + rtol * m));
        i = end;
      }
      out[r] = worst;
    }
  });
  return out;
}

double InitialStep(const torch::Tensor& y, const torch::Tensor& f, double rtol, double span) {
  torch::NoGradGuard no_grad;
  auto k = y.narrow(1, 4, 4).detach().abs().amax(1).to(torch::kCPU, torch::kFloat64).contiguous();
  auto a = f.narrow(1, 4, 4).detach().abs().amax(1).to(torch::kCPU, torch::kFloat64).contiguous();
  double time = span;
  for (int64_t r = 0; r < k.size(0); ++r) {
    const double kr = k.data_ptr<double>()[r], ar = a.data_ptr<double>()[r];
    if (ar > 0 && std::isfinite(ar) && std::isfinite(kr)) time = std::min(time, kr / ar);
  }
  return time * std::pow(rtol, 0.2);
}

}  // namespace lumpy
