#include "causal_time.h"

#include <gtest/gtest.h>

#include <cmath>

#include "lumpy/testing/conformance.h"

namespace causal_time {
namespace {

std::shared_ptr<lumpy::CurriculumWeighter> Make(lumpy::Registry& registry, std::map<std::string, lumpy::ParamValue> p) {
  if (!Register(registry).ok()) return nullptr;
  auto made = registry.Make<lumpy::CurriculumWeighter>("causal_time", std::move(p));
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *made : nullptr;
}

// Four slices of t in [0, 4), losses 1, 2 (slice 0: mean 1.5), 4 (slice 1),
// none (slice 2: 0), 8 (slice 3); epsilon = 0.5:
//   w = exp(-0.5 * (0, 1.5, 5.5, 5.5)), reduced = sum_i w_i L_i / 4,
// and d reduced / d l_j = w_i / (4 n_i) for the slice i of point j (the
// weights held fixed).
TEST(CausalTime, ReducesAsTheClosedForm) {
  lumpy::Registry registry;
  auto c = Make(registry, {{"slices", int64_t{4}}, {"epsilon", 0.5}});
  ASSERT_NE(c, nullptr);
  c->set_bounds({{0.0, -1, -1, -1}, {4.0, 1, 1, 1}});
  auto points = torch::zeros({4, 4}, torch::kFloat64);
  points.select(1, 0).copy_(torch::tensor({0.2, 0.9, 1.5, 3.7}, torch::kFloat64));
  auto loss = torch::tensor({1.0, 2.0, 4.0, 8.0}, torch::kFloat64).requires_grad_(true);
  auto r = c->reduce(points, loss);
  const double w[4] = {1.0, std::exp(-0.75), std::exp(-2.75), std::exp(-2.75)};
  EXPECT_NEAR(r.item<double>(), (w[0] * 1.5 + w[1] * 4.0 + w[3] * 8.0) / 4.0, 1e-15);
  r.backward();
  const double grad[4] = {w[0] / 8.0, w[0] / 8.0, w[1] / 4.0, w[3] / 4.0};
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(loss.grad()[j].item<double>(), grad[j], 1e-15) << j;
}

// epsilon grows by `factor` only once every weight exceeds delta, up to
// epsilon_max.
TEST(CausalTime, AnnealsOnceAllOfTimeIsTrained) {
  lumpy::Registry registry;
  auto c = Make(registry, {{"slices", int64_t{2}}, {"epsilon", 1.0}, {"factor", 10.0}, {"epsilon_max", 50.0},
                           {"delta", 0.9}});
  ASSERT_NE(c, nullptr);
  c->set_bounds({{0.0, -1, -1, -1}, {2.0, 1, 1, 1}});
  auto points = torch::zeros({2, 4}, torch::kFloat64);
  points.select(1, 0).copy_(torch::tensor({0.5, 1.5}, torch::kFloat64));
  auto epsilon = [&] { return c->telemetry()[0].second; };
  c->update(points, torch::tensor({1.0, 1.0}, torch::kFloat64), 0);  // w_1 = e^-1 < 0.9: stays
  EXPECT_EQ(epsilon(), 1.0);
  c->update(points, torch::tensor({0.01, 1.0}, torch::kFloat64), 1);  // w_1 = e^-0.01: grows
  EXPECT_EQ(epsilon(), 10.0);
  c->update(points, torch::tensor({0.001, 1.0}, torch::kFloat64), 2);  // w_1 = e^-0.01 again: capped
  EXPECT_EQ(epsilon(), 50.0);
}

// The SDK's conformance kit: a scalar attached to the per-point loss,
// reduce() leaving the state alone, the state through a checkpoint and on
// over later updates.
TEST(CausalTime, MeetsTheCurriculumContract) {
  lumpy::Registry registry;
  ASSERT_TRUE(Register(registry).ok());
  lumpy::testing::ExpectCurriculumConforms([&] {
    auto made = registry.Make<lumpy::CurriculumWeighter>("causal_time", {{"epsilon", 1e-3}});
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *made : nullptr;
  });
}

}  // namespace
}  // namespace causal_time
