// The SIREN's forward (Taylor-mode) jet against the SDK's nested-autograd jet
// of the same network: value, first and second derivatives and the parameter
// gradients of a loss built on them. Tolerances: 1e-10 (float64), 1e-4
// relative to the largest entry (float32).

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"

namespace lumpy {
namespace {

using lumpy::testing::MaxAbs;
using lumpy::testing::RandomPoints;

std::shared_ptr<MetricModel> MakeSiren(const std::string& jet, torch::Dtype dtype, uint64_t seed,
                                       bool fused = true) {
  torch::manual_seed(seed);
  auto m = testing::MakeBuiltIn<MetricModel>(
      "siren", {{"jet", jet},
                {"fused", fused},
                {"omega0", 10.0},           // part 5's frequency: large derivatives
                {"output_init_std", 0.3},   // far from Minkowski
                {"clip", 1.5}});            // some points outside the clip box
  m->to(dtype);
  return m;
}

// A loss on every component of a jet (second derivatives only at order 2).
torch::Tensor JetLoss(const Jet& j) {
  return (j.order == 2 ? j.d2g.square().mean() : torch::zeros({}, j.g.options())) +
         (j.order >= 1 ? j.dg.square().mean() : torch::zeros({}, j.g.options())) + j.g.sum();
}

// (dtype, fused): the hand-written CPU loops and the tensor-operation path.
class SirenJetTest : public ::testing::TestWithParam<std::tuple<torch::Dtype, bool>> {};

TEST_P(SirenJetTest, TaylorJetEqualsAutogradJet) {
  const auto [dtype, fused] = GetParam();
  const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-4;
  auto fast = MakeSiren("taylor", dtype, 3, fused);
  auto slow = MakeSiren("autograd", dtype, 3);
  auto x = RandomPoints(96, {-2, -2, -2, -2}, {2, 2, 2, 2}).to(dtype);
  ASSERT_GT((x.abs() > 1.5).any(1).sum().item<int64_t>(), 10);
  for (int order : {0, 1, 2}) {
    Jet a = fast->jet(x, order), b = slow->jet(x, order);
    auto rel = [&](const torch::Tensor& u, const torch::Tensor& v) {
      return MaxAbs(u - v) / (dtype == torch::kFloat64 ? 1.0 : std::max(1.0, MaxAbs(v)));
    };
    EXPECT_LT(rel(a.g, b.g), tol) << "order " << order;
    if (order >= 1) EXPECT_LT(rel(a.dg, b.dg), tol) << "order " << order;
    if (order == 2) {
      EXPECT_LT(rel(a.d2g, b.d2g), tol);
      EXPECT_GT(MaxAbs(b.d2g), 1.0);  // non-trivial second derivatives
    }
  }
}

TEST_P(SirenJetTest, ParameterGradientsAgree) {
  const auto [dtype, fused] = GetParam();
  const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-4;
  auto fast = MakeSiren("taylor", dtype, 5, fused);
  auto slow = MakeSiren("autograd", dtype, 5);
  // 600 points: more than one block of the fused loops (256 points each);
  // 2 points: a ray's stage, where the fused products are plain loops.
  for (int64_t n : {600, 2}) {
    auto x = RandomPoints(n, {-2, -2, -2, -2}, {2, 2, 2, 2}, 5 + n).to(dtype);
    for (int order : {0, 1, 2}) {
      for (auto& p : fast->parameters()) p.mutable_grad() = torch::Tensor();
      for (auto& p : slow->parameters()) p.mutable_grad() = torch::Tensor();
      JetLoss(fast->jet(x, order)).backward();
      JetLoss(slow->jet(x, order)).backward();
      auto pf = fast->parameters(), ps = slow->parameters();
      ASSERT_EQ(pf.size(), ps.size());
      for (size_t i = 0; i < pf.size(); ++i) {
        const double scale = dtype == torch::kFloat64 ? 1.0 : std::max(1.0, MaxAbs(ps[i].grad()));
        EXPECT_LT(MaxAbs(pf[i].grad() - ps[i].grad()) / scale, tol)
            << n << " points, order " << order << ", parameter " << i;
      }
    }
  }
}

// Gradients with respect to the points themselves (rays move the points).
TEST_P(SirenJetTest, PointGradientsAgree) {
  const auto [dtype, fused] = GetParam();
  const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-4;
  auto fast = MakeSiren("taylor", dtype, 7, fused);
  auto slow = MakeSiren("autograd", dtype, 7);
  for (int64_t n : {24, 2}) {
    auto x0 = RandomPoints(n, {-2, -2, -2, -2}, {2, 2, 2, 2}, 7 + n).to(dtype);
    for (int order : {0, 1, 2}) {
      auto xf = x0.clone().requires_grad_(true), xs = x0.clone().requires_grad_(true);
      JetLoss(fast->jet(xf, order)).backward();
      JetLoss(slow->jet(xs, order)).backward();
      const double scale = dtype == torch::kFloat64 ? 1.0 : std::max(1.0, MaxAbs(xs.grad()));
      EXPECT_GT(MaxAbs(xs.grad()), 1e-3);
      EXPECT_LT(MaxAbs(xf.grad() - xs.grad()) / scale, tol) << n << " points, order " << order;
    }
  }
}

// The fused jet takes the parameters as one flat tensor that it keeps while
// they are unchanged: an optimizer step, a copy into them (a checkpoint's
// load) and a change of grad mode must each be seen by the next jet.
TEST(SirenFusedJet, FollowsParameterUpdatesAndGradMode) {
  auto fast = MakeSiren("taylor", torch::kFloat64, 11, true);
  auto slow = MakeSiren("autograd", torch::kFloat64, 11);
  auto x = RandomPoints(2, {-1, -1, -1, -1}, {1, 1, 1, 1}, 11).to(torch::kFloat64);
  auto agree = [&](const char* when) {
    Jet a = fast->jet(x, 1), b = slow->jet(x, 1);
    EXPECT_LT(MaxAbs(a.g - b.g), 1e-10) << when;
    EXPECT_LT(MaxAbs(a.dg - b.dg), 1e-10) << when;
    return a.dg.detach().clone();
  };
  {
    torch::NoGradGuard no_grad;  // kept without a graph first
    agree("without grad");
  }
  JetLoss(fast->jet(x, 1)).backward();  // then with one: gradients must flow
  JetLoss(slow->jet(x, 1)).backward();
  auto pf = fast->parameters(), ps = slow->parameters();
  for (size_t i = 0; i < pf.size(); ++i) {
    ASSERT_TRUE(pf[i].grad().defined()) << "parameter " << i;
    EXPECT_LT(MaxAbs(pf[i].grad() - ps[i].grad()), 1e-10) << "parameter " << i;
  }
  const auto before = agree("before the step");
  torch::optim::SGD(fast->parameters(), 0.05).step();
  torch::optim::SGD(slow->parameters(), 0.05).step();
  const auto after = agree("after an optimizer step");
  EXPECT_GT(MaxAbs(after - before), 1e-4);  // the step changed the jet
  {
    torch::NoGradGuard no_grad;
    pf[0].copy_(pf[0] * 1.5);
    ps[0].copy_(ps[0] * 1.5);
  }
  EXPECT_GT(MaxAbs(agree("after a copy into a parameter") - after), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Kernels, SirenJetTest,
                         ::testing::Combine(::testing::Values(torch::kFloat64, torch::kFloat32),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == torch::kFloat64
                                                  ? "float64"
                                                  : "float32") +
                                  (std::get<1>(info.param) ? "_fused" : "_tensor");
                         });

}  // namespace
}  // namespace lumpy
