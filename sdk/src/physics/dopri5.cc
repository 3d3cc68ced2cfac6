#include "physics/dopri5.h"

#include <algorithm>
#include <cmath>

#include "physics/geodesic_rhs.h"

namespace lumpy::ray {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A Runge-Kutta stage's state y + h sum_j a_j k_j, and its positions (the
// state's first 4 columns, which the jet takes) as a second output, in one
// autograd node: the tensor form is two operations per term and a slice,
// each paying LibTorch's dispatch on a state of a few hundred numbers, and
// each a node of the backward pass. The adjoint, with g the state's gradient
// plus the positions' in its first 4 columns: dL/dy = g, dL/dk_j = h a_j g.
struct StageState : public torch::autograd::Function<StageState> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& y, torch::TensorList k,
                               std::vector<double> weights) {
    auto out = y.clone(at::MemoryFormat::Contiguous);
    auto x = torch::empty({y.size(0), 4}, y.options());
    std::vector<torch::Tensor> kc;
    for (const auto& kj : k) kc.push_back(kj.contiguous());
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "stage_state", [&] {
      scalar_t* o = out.data_ptr<scalar_t>();
      const int64_t n = out.numel(), dim = out.size(1);
      for (size_t j = 0; j < kc.size(); ++j) {
        if (weights[j] == 0) continue;
        const scalar_t w = static_cast<scalar_t>(weights[j]);
        const scalar_t* kj = kc[j].data_ptr<scalar_t>();
        for (int64_t i = 0; i < n; ++i) o[i] += w * kj[i];
      }
      scalar_t* xp = x.data_ptr<scalar_t>();
      for (int64_t r = 0; r < out.size(0); ++r)
        for (int64_t i = 0; i < 4; ++i) xp[r * 4 + i] = o[r * dim + i];
    });
    ctx->saved_data["weights"] = weights;
    return {out, x};
  }
  // The stages' gradients are written into one buffer and handed out as its
  // rows: one allocation instead of an operation per stage.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto weights = ctx->saved_data["weights"].toDoubleVector();
    const auto& gy = grads[0];
    const auto& gx = grads[1];
    TORCH_CHECK(gy.defined(), "ray tracer: a stage's positions were used without its state");
    const int64_t rays = gy.size(0), dim = gy.size(1);
    auto gyc = gy.contiguous();
    auto gxc = gx.defined() ? gx.contiguous() : torch::Tensor();
    auto rows = torch::empty({static_cast<int64_t>(weights.size()) + 1, rays, dim}, gy.options());
    AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "stage_state_backward", [&] {
      const scalar_t* a = gyc.data_ptr<scalar_t>();
      const scalar_t* b = gxc.defined() ? gxc.data_ptr<scalar_t>() : nullptr;
      scalar_t* g = rows.data_ptr<scalar_t>();  // row 0: dL/dy
      const int64_t n = rays * dim;
      for (int64_t r = 0; r < rays; ++r)
        for (int64_t i = 0; i < dim; ++i)
          g[r * dim + i] = b != nullptr && i < 4 ? a[r * dim + i] + b[r * 4 + i] : a[r * dim + i];
      for (size_t j = 0; j < weights.size(); ++j) {
        const scalar_t w = static_cast<scalar_t>(weights[j]);
        for (int64_t i = 0; i < n; ++i) g[(j + 1) * n + i] = g[i] * w;
      }
    });
    variable_list out = {rows.select(0, 0)};
    for (size_t j = 0; j < weights.size(); ++j) {
      out.push_back(weights[j] == 0 ? torch::Tensor() : rows.select(0, static_cast<int64_t>(j) + 1));
    }
    out.push_back(torch::Tensor());
    return out;
  }
};

}  // namespace

// y + h sum_j a_j k_j: the fused node on the CPU, tensor operations elsewhere.
Stage StageSum(const torch::Tensor& y, double h, const std::vector<torch::Tensor>& k, const double* a,
               bool fused) {
  std::vector<double> w(k.size());
  for (size_t j = 0; j < k.size(); ++j) w[j] = h * a[j];
  if (RayFusedApplies(y, fused)) {
    auto out = StageState::apply(y, torch::TensorList(k), w);
    return {out[0], out[1]};
  }
  auto out = y;
  for (size_t j = 0; j < k.size(); ++j) {
    if (w[j] != 0) out = out + w[j] * k[j];
  }
  return {out, out.narrow(1, 0, 4)};
}

torch::Tensor DenseOutput(const torch::Tensor& theta, const torch::Tensor& y0,
                          const torch::Tensor& f0, const torch::Tensor& y1,
                          const torch::Tensor& f1, const torch::Tensor& c,
                          const torch::Tensor& h) {
  auto t = theta.view({-1, 1});
  auto t2 = t * t, t3 = t2 * t;
  return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * h * f0 + (-2 * t3 + 3 * t2) * y1 +
         (t3 - t2) * h * f1 + (t2 - 2 * t3 + t2 * t2) * c;
}

double NextStepQuotient(double err, double h, bool after_rejection, AcceptedStep* previous) {
  double quotient = std::pow(std::max(err, 1e-10), 0.2) / 0.9;
  if (previous->h != 0) {
    quotient = std::max(quotient, (previous->h / h) * std::pow(err * err / previous->err, 0.2) / 0.9);
  }
  quotient = std::clamp(quotient, 0.2, 5.0);
  if (after_rejection) quotient = std::max(quotient, 1.0);
  *previous = {h, std::max(1e-2, err)};
  return quotient;
}

}  // namespace lumpy::ray
