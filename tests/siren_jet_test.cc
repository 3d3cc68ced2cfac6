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

std::shared_ptr<MetricModel> MakeSiren(const std::string& jet, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  auto m = testing::MakeBuiltIn<MetricModel>(
      "siren", {{"jet", jet},
                {"omega0", 10.0},           // part 5's frequency: large derivatives
                {"output_init_std", 0.3},   // far from Minkowski
                {"clip", 1.5}});            // some points outside the clip box
  m->to(dtype);
  return m;
}

class SirenJetTest : public ::testing::TestWithParam<torch::Dtype> {};

TEST_P(SirenJetTest, TaylorJetEqualsAutogradJet) {
  const torch::Dtype dtype = GetParam();
  const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-4;
  auto fast = MakeSiren("taylor", dtype, 3);
  auto slow = MakeSiren("autograd", dtype, 3);
  auto x = RandomPoints(96, {-2, -2, -2, -2}, {2, 2, 2, 2}).to(dtype);
  ASSERT_GT((x.abs() > 1.5).any(1).sum().item<int64_t>(), 10);
  for (int order : {1, 2}) {
    Jet a = fast->jet(x, order), b = slow->jet(x, order);
    auto rel = [&](const torch::Tensor& u, const torch::Tensor& v) {
      return MaxAbs(u - v) / (dtype == torch::kFloat64 ? 1.0 : std::max(1.0, MaxAbs(v)));
    };
    EXPECT_LT(rel(a.g, b.g), tol) << "order " << order;
    EXPECT_LT(rel(a.dg, b.dg), tol) << "order " << order;
    if (order == 2) {
      EXPECT_LT(rel(a.d2g, b.d2g), tol);
      EXPECT_GT(MaxAbs(b.d2g), 1.0);  // non-trivial second derivatives
    }
  }
}

TEST_P(SirenJetTest, ParameterGradientsAgree) {
  const torch::Dtype dtype = GetParam();
  const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-4;
  auto fast = MakeSiren("taylor", dtype, 5);
  auto slow = MakeSiren("autograd", dtype, 5);
  auto x = RandomPoints(32, {-2, -2, -2, -2}, {2, 2, 2, 2}).to(dtype);
  auto loss = [](const Jet& j) { return j.d2g.square().mean() + j.dg.square().mean() + j.g.sum(); };
  loss(fast->jet(x, 2)).backward();
  loss(slow->jet(x, 2)).backward();
  auto pf = fast->parameters(), ps = slow->parameters();
  ASSERT_EQ(pf.size(), ps.size());
  for (size_t i = 0; i < pf.size(); ++i) {
    const double scale = dtype == torch::kFloat64 ? 1.0 : std::max(1.0, MaxAbs(ps[i].grad()));
    EXPECT_LT(MaxAbs(pf[i].grad() - ps[i].grad()) / scale, tol) << "parameter " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, SirenJetTest, ::testing::Values(torch::kFloat64, torch::kFloat32),
                         [](const auto& info) {
                           return info.param == torch::kFloat64 ? "float64" : "float32";
                         });

}  // namespace
}  // namespace lumpy
