// Judging a metric on held-out supernovae (data/held_out.h) and the closed-form
// flat-LCDM fit behind it (data/lcdm_fit.h), on noiseless flat-LCDM data.

#include <gtest/gtest.h>

#include <cmath>

#include "analytic_metrics.h"
#include "data/held_out.h"
#include "data/lcdm_fit.h"

namespace lumpy {
namespace {

// The fit's distance modulus against the test's own quadrature
// (testing::FlatLcdmLuminosityDistance): 1e-8 relative in d_L.
TEST(LcdmFit, DistanceModulusMatchesTheQuadrature) {
  auto z = torch::tensor({0.01, 0.1, 0.5, 1.0, 2.26}, torch::kFloat64);
  auto mu = FlatLcdmDistanceModulus(z, 67.0, 0.31);
  for (int64_t i = 0; i < z.size(0); ++i) {
    const double d = testing::FlatLcdmLuminosityDistance(z[i].item<double>(), 67.0, 0.31);
    EXPECT_NEAR(mu[i].item<double>(), 5 * std::log10(d) + 25, 5 / std::log(10.0) * 1e-8);
  }
}

// 400 supernovae on noiseless flat LCDM (H0 70, Omega_m 0.3, sigma 0.1), every
// third held out; the "metric" is LCDM shifted by +0.1 mag and misses five
// held-out ones. LCDM fitted on the training set recovers H0 and Omega_m
// (1e-6) with chi^2 ~ 0 on both sets; the metric's chi^2 is 1 per reached
// supernova; the held-out comparison is over the reached ones.
TEST(HeldOutSupernovae, JudgesAMetricBesideLcdmFittedOnTheTrainingSet) {
  HubbleDiagram d;
  auto z = torch::linspace(0.011, 2.2, 400, torch::kFloat64);
  auto mu = FlatLcdmDistanceModulus(z, 70.0, 0.3);
  int64_t held = 0, missed = 0;
  for (int64_t i = 0; i < 400; ++i) {
    HubbleDiagram::Object o;
    o.z = z[i].item<double>();
    o.mu_obs = mu[i].item<double>();
    o.sigma = 0.1;
    o.held_out = i % 3 == 0;
    held += o.held_out;
    o.reached = !(o.held_out && missed < 5);
    missed += !o.reached;
    o.mu_model = o.reached ? o.mu_obs + 0.1 : NAN;
    d.objects.push_back(o);
  }
  auto j = JudgeOnHeldOut(d);
  ASSERT_FALSE(j.empty());
  EXPECT_NEAR(j["lcdm"]["h0"].get<double>(), 70.0, 1e-6 * 70);
  EXPECT_NEAR(j["lcdm"]["omega_m"].get<double>(), 0.3, 1e-6);
  EXPECT_LT(j["lcdm"]["training"]["chi2"].get<double>(), 1e-8);
  EXPECT_LT(j["lcdm"]["held_out"]["chi2"].get<double>(), 1e-8);
  EXPECT_EQ(j["held_out"]["n"].get<int64_t>(), held);
  EXPECT_EQ(j["held_out"]["reached"].get<int64_t>(), held - 5);
  EXPECT_EQ(j["training"]["n"].get<int64_t>(), 400 - held);
  EXPECT_NEAR(j["training"]["chi2"].get<double>(), 400 - held, 1e-9);
  EXPECT_NEAR(j["held_out"]["chi2_per_reached"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["delta_chi2_held_out"].get<double>(), held - 5, 1e-6);
  // Without held-out objects there is nothing to judge.
  for (auto& o : d.objects) o.held_out = false;
  EXPECT_TRUE(JudgeOnHeldOut(d).empty());
}

}  // namespace
}  // namespace lumpy
