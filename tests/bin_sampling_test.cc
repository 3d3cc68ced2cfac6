// Sampled direction bins (supernova_chi2's sample_bins, sky_rays.h's
// BinSample) are unbiased: over every subset of K of B bins the weighted sums
// average exactly to the full ones (the estimator's definition, checked by
// enumeration, values and gradients); and the term itself, drawing its
// bins at random, averages to the full chi^2 and its gradient on flat LCDM
// (statistical, within 4 standard errors).

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "built_in_plugins.h"
#include "lumpy/sky_rays.h"
#include "physics/point_set_context.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Every K-subset of {0..B-1}.
void ForEachSubset(int64_t b, int64_t k, const std::function<void(const std::vector<int64_t>&)>& f,
                   std::vector<int64_t> prefix = {}, int64_t from = 0) {
  if (static_cast<int64_t>(prefix.size()) == k) return f(prefix);
  for (int64_t i = from; i < b; ++i) {
    prefix.push_back(i);
    ForEachSubset(b, k, f, prefix, i + 1);
    prefix.pop_back();
  }
}

// A diagonal chi^2 (sum over targets) and a full quadratic form r^T P r
// (pairs on one bin weighted `same`, on two bins `cross`): the average of
// the estimates over all subsets equals the full value, for K = 1..B, and
// the averaged gradient with respect to the residuals equals the full one.
TEST(BinSampling, EveryWeightedSumIsUnbiasedOverAllSubsets) {
  torch::manual_seed(3);
  const int64_t bins = 6, n = 23;
  auto ray_of = torch::randint(bins, {n}, torch::kLong);
  auto r = torch::randn({n}, kF64).requires_grad_(true);
  auto a = torch::randn({n, n}, kF64);
  auto p = torch::mm(a, a.t()) + n * torch::eye(n, kF64);  // a precision matrix
  auto full_diag = r.square().sum();
  auto full_quad = torch::dot(r, torch::mv(p, r));
  auto g_diag = torch::autograd::grad({full_diag}, {r})[0];
  auto g_quad = torch::autograd::grad({full_quad}, {r})[0];
  for (int64_t k = 1; k <= bins; ++k) {
    double sum_diag = 0, sum_quad = 0;
    auto grad_diag = torch::zeros_like(r), grad_quad = torch::zeros_like(r);
    int64_t count = 0;
    ForEachSubset(bins, k, [&](const std::vector<int64_t>& picked) {
      auto s = rays::SampleOf(torch::tensor(picked, torch::kLong), bins, ray_of);
      ASSERT_EQ(s.bins.size(0), k);
      EXPECT_TRUE(torch::equal(torch::tensor(picked, torch::kLong).index_select(0, s.ray_of),
                               ray_of.index_select(0, s.targets)));
      auto rs = r.index_select(0, s.targets);
      auto est_diag = s.same * rs.square().sum();
      auto ps = p.index_select(0, s.targets).index_select(1, s.targets);
      auto same_bin = s.ray_of.unsqueeze(0) == s.ray_of.unsqueeze(1);
      auto w = torch::where(same_bin, torch::full_like(ps, s.same), torch::full_like(ps, s.cross));
      auto est_quad = torch::dot(rs, torch::mv(ps * w, rs));
      sum_diag += est_diag.item<double>();
      sum_quad += est_quad.item<double>();
      if (s.targets.size(0) > 0) {
        grad_diag += torch::autograd::grad({est_diag}, {r}, {}, /*retain_graph=*/true)[0];
        grad_quad += torch::autograd::grad({est_quad}, {r})[0];
      }
      ++count;
    });
    EXPECT_NEAR(sum_diag / count, full_diag.item<double>(), 1e-12 * full_diag.item<double>()) << "K = " << k;
    EXPECT_LT((grad_diag / count - g_diag).abs().max().item<double>(), 1e-12) << "K = " << k;
    if (k >= 2) {  // with one bin no pair on two bins is ever seen
      EXPECT_NEAR(sum_quad / count, full_quad.item<double>(), 1e-12 * full_quad.item<double>()) << "K = " << k;
      EXPECT_LT((grad_quad / count - g_quad).abs().max().item<double>(), 1e-10) << "K = " << k;
    }
  }
}

// The term drawing 8 of its 48 bins each evaluation, on flat LCDM (h0 and
// Omega_m trainable) and the real catalogue: over 200 draws the mean value
// and the mean gradient with respect to h0 are within 4 standard errors of
// the full term's (every bin every time).
TEST(BinSampling, TheSampledSupernovaTermAveragesToTheFullOne) {
  auto metric = testing::TrainableLcdm(68.0, 0.31);
  auto h0 = metric->physical_parameters().at(0).value;
  std::map<std::string, ParamValue> physical = {{"mode", std::string("physical")}, {"bins", int64_t{48}},
                                                {"z_column", std::string("zHD")}, {"z_min", 0.01}};
  auto full = MakeBuiltIn<LossTerm>("supernova_chi2", physical);
  physical["sample_bins"] = int64_t{8};
  auto sampled = MakeBuiltIn<LossTerm>("supernova_chi2", physical);
  auto value_and_grad = [&](LossTerm& term) {
    PointSetContext ctx(*metric, torch::zeros({0, 4}, kF64));
    auto v = term.evaluate(ctx).value;
    auto g = torch::autograd::grad({v}, {h0})[0];
    return std::pair<double, double>{v.item<double>(), g.item<double>()};
  };
  const auto [want, want_grad] = value_and_grad(*full);
  torch::manual_seed(11);
  const int draws = 200;
  double sum = 0, sum2 = 0, gsum = 0, gsum2 = 0;
  for (int i = 0; i < draws; ++i) {
    const auto [v, g] = value_and_grad(*sampled);
    sum += v;
    sum2 += v * v;
    gsum += g;
    gsum2 += g * g;
  }
  const double mean = sum / draws, se = std::sqrt((sum2 / draws - mean * mean) / (draws - 1));
  const double gmean = gsum / draws, gse = std::sqrt((gsum2 / draws - gmean * gmean) / (draws - 1));
  EXPECT_GT(se, 0);
  EXPECT_LT(std::abs(mean - want), 4 * se) << "mean " << mean << " +- " << se << ", full " << want;
  EXPECT_LT(std::abs(gmean - want_grad), 4 * gse) << "gradient " << gmean << " +- " << gse << ", full " << want_grad;
}

TEST(BinSampling, BadSampleSizesAreRefused) {
  auto make = [](std::map<std::string, ParamValue> p) {
    return testing::BuiltInPlugins().Make<LossTerm>("supernova_chi2", std::move(p));
  };
  auto reference = make({{"sample_bins", int64_t{4}}});
  ASSERT_FALSE(reference.ok());
  EXPECT_NE(std::string(reference.status().message()).find("needs mode = \"physical\""), std::string::npos);
  auto too_many = make({{"mode", std::string("physical")}, {"bins", int64_t{6}}, {"sample_bins", int64_t{7}}});
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(std::string(too_many.status().message()).find("7 is more than the 6 bins"), std::string::npos);
  auto one_bin_per_sn = make({{"mode", std::string("physical")}, {"bins", int64_t{0}}, {"sample_bins", int64_t{2}}});
  EXPECT_FALSE(one_bin_per_sn.ok());
}

}  // namespace
}  // namespace lumpy
