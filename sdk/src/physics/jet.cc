#include "lumpy/jet.h"

#include <array>

namespace lumpy {

namespace {

// d(sum_b out[b]) / dx: since points are independent, row b of the result is
// the gradient of out[b] with respect to x[b].
torch::Tensor PointwiseGrad(const torch::Tensor& out, const torch::Tensor& x, bool create_graph) {
  if (!out.requires_grad()) return torch::zeros_like(x);
  auto grads = torch::autograd::grad({out.sum()}, {x}, /*grad_outputs=*/{},
                                     /*retain_graph=*/true, create_graph,
                                     /*allow_unused=*/true);
  if (!grads[0].defined()) return torch::zeros_like(x);
  return grads[0];
}

}  // namespace

Jet AutogradJet(const MetricFunction& metric, const torch::Tensor& x, int order,
                bool create_graph) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 4, "AutogradJet: x must be [B,4], got ",
              x.sizes());
  TORCH_CHECK(order >= 0 && order <= 2, "AutogradJet: order must be 0, 1 or 2, got ", order);
  Jet jet;
  jet.order = order;
  torch::AutoGradMode grad_mode(true);
  torch::Tensor xx = x.requires_grad() ? x : x.detach().requires_grad_(true);
  torch::Tensor g = metric(xx);
  TORCH_CHECK(g.dim() == 3 && g.size(1) == 4 && g.size(2) == 4,
              "AutogradJet: the metric function must return [B,4,4], got ", g.sizes());
  const int64_t batch = x.size(0);
  if (order >= 1) {
    // The first derivatives must keep their graph if second ones follow.
    const bool first_graph = create_graph || order >= 2;
    std::array<torch::Tensor, 16> d1;  // d1[i*4+j] = d g_ij / dx  [B,4]
    std::array<torch::Tensor, 64> d2;  // d2[(i*4+j)*4+k] = d (d_k g_ij) / dx  [B,4]
    for (int i = 0; i < 4; ++i) {
      for (int j = i; j < 4; ++j) {
        torch::Tensor gij = g.select(1, i).select(1, j);
        d1[i * 4 + j] = PointwiseGrad(gij, xx, first_graph);
        d1[j * 4 + i] = d1[i * 4 + j];
        if (order >= 2) {
          for (int k = 0; k < 4; ++k) {
            d2[(i * 4 + j) * 4 + k] = PointwiseGrad(d1[i * 4 + j].select(1, k), xx, create_graph);
            d2[(j * 4 + i) * 4 + k] = d2[(i * 4 + j) * 4 + k];
          }
        }
      }
    }
    jet.dg = torch::stack(std::vector<torch::Tensor>(d1.begin(), d1.end()), 1)
                 .view({batch, 4, 4, 4});
    if (order >= 2) {
      jet.d2g = torch::stack(std::vector<torch::Tensor>(d2.begin(), d2.end()), 1)
                    .view({batch, 4, 4, 4, 4});
    }
  }
  if (!create_graph) {
    g = g.detach();
    if (jet.dg.defined()) jet.dg = jet.dg.detach();
    if (jet.d2g.defined()) jet.d2g = jet.d2g.detach();
  }
  jet.g = g;
  return jet;
}

}  // namespace lumpy
