#include "tolerant_linear.h"

#include <gtest/gtest.h>

#include "lumpy/testing/conformance.h"

namespace tolerant_linear {
namespace {

// The registered entry, or null (each test asserts it before using it).
const lumpy::PluginEntry* Entry(lumpy::Registry& registry) {
  if (!Register(registry).ok()) return nullptr;
  return registry.Find(lumpy::PluginKind::kConstraint, "tolerant_linear");
}

TEST(TolerantLinear, DeclaresItsParameters) {
  lumpy::Registry registry;
  const auto* found = Entry(registry);
  ASSERT_NE(found, nullptr);
  const auto& entry = *found;
  ASSERT_EQ(entry.params.size(), 2u);
  EXPECT_EQ(entry.params[0].name(), "weight");
  lumpy::ParamValue negative = -1.0;
  const auto refusal = entry.params[1].Check(negative);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(*refusal, "must be >= 0, got -1");
}

TEST(TolerantLinear, PenaltyIsLinearBeyondTheTolerance) {
  lumpy::Registry registry;
  const auto* found = Entry(registry);
  ASSERT_NE(found, nullptr);
  const auto& entry = *found;
  lumpy::Params params;
  params.Set("weight", 2.0);
  params.Set("tolerance", 0.5);
  auto handler = std::get<lumpy::Factory<lumpy::ConstraintHandler>>(entry.factory)(params);
  ASSERT_TRUE(handler.ok());
  auto v = torch::tensor({0.0, 0.25, 0.5, 1.0, 3.0}, torch::kFloat64);
  auto p = (*handler)->penalty(v);
  auto expected = torch::tensor({0.0, 0.0, 0.0, 1.0, 5.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(p.per_point, expected, 0, 1e-15));
  EXPECT_DOUBLE_EQ(p.total.item<double>(), 6.0 / 5.0);
  (*handler)->update(v, 0);
  EXPECT_DOUBLE_EQ((*handler)->telemetry()[0].second, 2.0 / 5.0);
}

// The SDK's conformance kit: the contract every handler must meet (penalty
// shapes, total == mean(per_point), finite gradients, stable telemetry
// names, state through a checkpoint).
TEST(TolerantLinear, MeetsTheHandlerContract) {
  lumpy::Registry registry;
  ASSERT_TRUE(Register(registry).ok());
  lumpy::testing::ExpectHandlerConforms([&] {
    auto made = registry.Make<lumpy::ConstraintHandler>("tolerant_linear", {{"tolerance", 1e-4}});
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *made : nullptr;
  });
}

}  // namespace
}  // namespace tolerant_linear
