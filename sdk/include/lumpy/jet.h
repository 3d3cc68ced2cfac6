#pragma once
// Jets: the metric and its coordinate derivatives at a batch of points.
//
// Coordinates x^mu = (t, x, y, z); x has shape [B, 4].
//   g   [B,4,4]        g_ij
//   dg  [B,4,4,4]      dg[b,i,j,k]   = d_k g_ij          (order >= 1)
//   d2g [B,4,4,4,4]    d2g[b,i,j,k,l] = d_k d_l g_ij     (order >= 2)
// Tensors carry the autograd graph to the model's parameters, so one reverse
// pass after the loss gives parameter gradients.

#include <torch/torch.h>

#include <functional>

#include "lumpy/export.h"

namespace lumpy {

struct LUMPY_API Jet {
  torch::Tensor g;
  torch::Tensor dg;
  torch::Tensor d2g;
  int order = 0;
};

// A metric written as a function of the coordinates: [B,4] -> [B,4,4],
// symmetric in the last two indices, each point independent of the others.
using MetricFunction = std::function<torch::Tensor(const torch::Tensor& x)>;

// The generic jet by nested reverse-mode autograd: exact for any metric
// function and slow (one backward pass per component). It is the oracle
// that fast, hand-propagated jets are tested against.
//
// With create_graph the derivatives stay differentiable with respect to the
// function's parameters (training); without, they are detached (probing).
// If x itself requires grad, derivatives also flow back into x's history.
LUMPY_API Jet AutogradJet(const MetricFunction& metric, const torch::Tensor& x,
                          int order, bool create_graph = true);

}  // namespace lumpy
