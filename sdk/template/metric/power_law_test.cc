#include "power_law.h"

#include <gtest/gtest.h>

#include <cmath>

#include "lumpy/testing/conformance.h"

namespace power_law {
namespace {

std::shared_ptr<lumpy::MetricModel> Make(lumpy::Registry& registry, std::map<std::string, lumpy::ParamValue> params) {
  auto made = registry.Make<lumpy::MetricModel>("power_law", std::move(params));
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *made : nullptr;
}

// The SDK's conformance kit: shapes, symmetry, every jet order against the
// autograd oracle of g itself, float32, in_domain (see the kit's header).
TEST(PowerLaw, MeetsTheMetricContract) {
  lumpy::Registry registry;
  ASSERT_TRUE(Register(registry).ok());
  for (double p : {0.5, 2.0 / 3.0, 1.5}) {
    SCOPED_TRACE("p = " + std::to_string(p));
    lumpy::testing::ExpectMetricConforms([&] { return Make(registry, {{"p", p}, {"p_trainable", true}}); },
                                         lumpy::testing::UniformPoints(32));
  }
}

// The closed form at the observer: a = 1, a'/a = H0, and q = -a a''/a'^2 =
// (1 - p)/p (1/2 for dust).
TEST(PowerLaw, ObserverSeesH0AndTheDecelerationOfItsExponent) {
  lumpy::Registry registry;
  ASSERT_TRUE(Register(registry).ok());
  auto metric = std::dynamic_pointer_cast<PowerLaw>(Make(registry, {{"h0", 70.0}}));
  ASSERT_NE(metric, nullptr);
  auto [a, da, d2a] = metric->Expansion(torch::ones({1}, torch::kFloat64));
  const double h0 = 70.0 * 1000.0 / 299792.458;
  EXPECT_NEAR(a.item<double>(), 1.0, 1e-15);
  EXPECT_NEAR(da.item<double>(), h0, 1e-14);
  EXPECT_NEAR(-(a * d2a / da.square()).item<double>(), 0.5, 1e-14);
}

TEST(PowerLaw, RejectsAnExponentOutsideItsBounds) {
  lumpy::Registry registry;
  ASSERT_TRUE(Register(registry).ok());
  auto made = registry.Make<lumpy::MetricModel>("power_law", {{"p", 5.0}, {"p_trainable", true}});
  ASSERT_FALSE(made.ok());
  // The refusal names the parameter and its bounds, not any error.
  EXPECT_NE(made.status().message().find("p: the initial value must lie within"), std::string::npos)
      << made.status();
}

}  // namespace
}  // namespace power_law
