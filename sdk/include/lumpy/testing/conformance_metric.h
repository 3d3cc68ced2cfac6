#pragma once
// The conformance checks of metrics (metric_model.h, jet.h): ExpectMetricConforms.
// Include lumpy/testing/conformance.h (it says what each one checks).

#include "lumpy/testing/conformance_core.h"

namespace lumpy::testing {

using MetricFactory = std::function<std::shared_ptr<MetricModel>()>;

struct MetricTolerances {
  double oracle = 1e-9;    // float64 jet against the autograd oracle (relative)
  double symmetry = 1e-12;
  double float32 = 1e-4;   // float32 against float64 (relative)
};

// `make` builds the metric under test; it is called with torch's seed set to
// the same value each time, so two calls give the same parameters. `points`
// [B,4]: where to check (only those in_domain are used; at least one must be).
inline void ExpectMetricConforms(const MetricFactory& make, const torch::Tensor& points,
                                 MetricTolerances tol = {}) {
  using internal::Asymmetry;
  using internal::Error;
  torch::manual_seed(0);
  std::shared_ptr<MetricModel> metric = make();
  ASSERT_NE(metric, nullptr) << "the factory made no metric";
  metric->to(torch::kFloat64);
  const auto x = points.to(torch::kFloat64);
  ASSERT_EQ(x.dim(), 2);
  ASSERT_EQ(x.size(1), 4);
  const auto inside = metric->in_domain(x);
  ASSERT_EQ(inside.scalar_type(), torch::kBool) << "in_domain must return bool, got " << inside.scalar_type();
  ASSERT_EQ(inside.sizes(), torch::IntArrayRef({x.size(0)})) << "in_domain must return [B], got "
                                                             << internal::Shape(inside);
  ASSERT_TRUE(inside.any().item<bool>()) << "none of the test points is in the metric's domain";
  const auto xi = x.index({inside});
  const int64_t b = xi.size(0);

  const Jet oracle = AutogradJet([&](const torch::Tensor& p) { return metric->jet(p, 0).g; }, xi, 2,
                                 /*create_graph=*/false);
  for (int order = 0; order <= 2; ++order) {
    SCOPED_TRACE("jet of order " + std::to_string(order));
    const Jet jet = metric->jet(xi, order);
    EXPECT_GE(jet.order, order) << "Jet::order must say which derivatives it holds";
    ASSERT_EQ(jet.g.sizes(), torch::IntArrayRef({b, 4, 4})) << "g: " << internal::Shape(jet.g);
    EXPECT_EQ(jet.g.scalar_type(), torch::kFloat64) << "g must be in the points' dtype";
    EXPECT_TRUE(internal::AllFinite(jet.g, "g"));
    EXPECT_LE(Asymmetry(jet.g, 1, 2), tol.symmetry) << "g_ij != g_ji";
    EXPECT_LE(Error(jet.g, oracle.g), tol.oracle) << "g differs from jet(x, 0).g";
    if (order >= 1) {
      ASSERT_EQ(jet.dg.sizes(), torch::IntArrayRef({b, 4, 4, 4})) << "dg: " << internal::Shape(jet.dg);
      EXPECT_TRUE(internal::AllFinite(jet.dg, "dg"));
      EXPECT_LE(Asymmetry(jet.dg, 1, 2), tol.symmetry) << "d_k g_ij != d_k g_ji";
      EXPECT_LE(Error(jet.dg, oracle.dg), tol.oracle)
          << "dg[b,i,j,k] must be d_k g_ij (the autograd oracle of the metric disagrees)";
    }
    if (order >= 2) {
      ASSERT_EQ(jet.d2g.sizes(), torch::IntArrayRef({b, 4, 4, 4, 4})) << "d2g: " << internal::Shape(jet.d2g);
      EXPECT_TRUE(internal::AllFinite(jet.d2g, "d2g"));
      EXPECT_LE(Asymmetry(jet.d2g, 1, 2), tol.symmetry) << "d2g not symmetric in (i, j)";
      EXPECT_LE(Asymmetry(jet.d2g, 3, 4), tol.symmetry) << "d2g not symmetric in (k, l)";
      EXPECT_LE(Error(jet.d2g, oracle.d2g), tol.oracle)
          << "d2g[b,i,j,k,l] must be d_k d_l g_ij (the autograd oracle of the metric disagrees)";
    }
  }

  // Gradients reach the parameters, finite.
  const auto params = metric->parameters();
  if (!params.empty()) {
    const Jet jet = metric->jet(xi, 2);
    (jet.g.sum() + jet.dg.sum() + jet.d2g.sum()).backward();
    bool any = false;
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      any = true;
      EXPECT_TRUE(internal::AllFinite(p.grad(), "a parameter's gradient"));
    }
    EXPECT_TRUE(any) << "the metric has parameters but the jet's graph reaches none of them";
  }

  // float32: the same metric (same seed) in float32.
  torch::manual_seed(0);
  std::shared_ptr<MetricModel> metric32 = make();
  metric32->to(torch::kFloat32);
  const Jet j32 = metric32->jet(xi.to(torch::kFloat32), 1);
  EXPECT_EQ(j32.g.scalar_type(), torch::kFloat32) << "a float32 metric must give float32 g";
  EXPECT_EQ(j32.dg.scalar_type(), torch::kFloat32) << "a float32 metric must give float32 dg";
  EXPECT_LE(Error(j32.g, oracle.g), tol.float32) << "float32 g far from float64 g";
  EXPECT_LE(Error(j32.dg, oracle.dg), tol.float32) << "float32 dg far from float64 dg";
}

}  // namespace lumpy::testing
