// Training behaviour with known answers.

#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "cli_runner.h"
#include "train/sampling.h"
#include "train/trainer.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

using testing::ReadFile;
using testing::RunLumpy;
using TrainTest = testing::TempDirTest;

const std::string kEds = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/eds_omega.toml";

// Values of one metrics.csv column.
std::vector<double> Column(const std::filesystem::path& csv, const std::string& name) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  size_t col = std::find(header.begin(), header.end(), name) - header.begin();
  EXPECT_LT(col, header.size()) << name;
  std::vector<double> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    out.push_back(std::stod(f[col]));
  }
  return out;
}

TEST_F(TrainTest, TrainableOmegaMFindsTheEinsteinDeSitterValue) {
  // EdS expansion solves the dust equations exactly with Omega_m = 1 only.
  auto r = RunLumpy("run '" + kEds + "' --out run", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto omega = Column(dir_ / "run" / "metrics.csv", "efe.omega_m");
  EXPECT_EQ(omega.front(), 0.3);
  // From 0.3 to within Adam's end-of-run wobble (about 1e-6 here) of 1.
  EXPECT_NEAR(omega.back(), 1.0, 1e-5);
  auto summary = nlohmann::json::parse(ReadFile(dir_ / "run" / "summary.json"));
  EXPECT_NEAR(summary["final"]["efe.omega_m"].get<double>(), 1.0, 1e-5);
  EXPECT_LT(summary["final"]["efe"].get<double>(), 1e-12);  // from 1.3e-4
}

// A dataset term (no per-point values) enters the loss directly: fitting h0
// to a noise-free mock made with h0 = 70, from 66, moves it to 70.
// A domain's ray_points: the bad states first, the rest uniform along the
// segments (here one, the diagonal from 0 to 1), the observer while there
// are no rays; strata come before them.
TEST(SamplePoints, RayPointsComeFromTheBadStatesThenTheSegments) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  DomainSpec d;
  d.x = d.y = d.z = {-1.0, 1.0};
  d.ray_points = 40;
  RayPositions rays;
  rays.bad = torch::tensor({2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0}, f64).view({2, 4});
  rays.segments = torch::tensor({0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0}, f64).view({1, 8});
  auto p = SamplePoints(d, f64, rays);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{40, 4}));
  EXPECT_TRUE(torch::equal(p.narrow(0, 0, 2), rays.bad));
  auto on = p.narrow(0, 2, 38);
  EXPECT_EQ((on - on.select(1, 0).unsqueeze(1)).abs().max().item<double>(), 0.0);  // on the diagonal
  EXPECT_GE(on.min().item<double>(), 0.0);
  EXPECT_LE(on.max().item<double>(), 1.0);
  EXPECT_GT(on.select(1, 0).std().item<double>(), 0.1);  // spread along it

  d.strata = {{"all", 3, -1.0, 0.0}};
  d.ray_points = 2;
  auto q = SamplePoints(d, f64, {});
  ASSERT_EQ(q.size(0), 5);
  EXPECT_LE(q.narrow(0, 0, 3).select(1, 0).max().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(q.narrow(0, 3, 2), torch::tensor({1.0, 0.0, 0.0, 0.0}, f64).expand({2, 4})));
}

TEST_F(TrainTest, SupernovaTermFitsH0OfAMock) {
  const std::string fit = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/sn_fit.toml";
  const std::string lcdm70 = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/flrw_probe.toml";
  auto mock = RunLumpy("mock-sn '" + lcdm70 + "' --out mock.dat --n 25 --no-noise --z-max 1.5", dir_);
  ASSERT_EQ(mock.exit_code, 0) << mock.err;
  auto r = RunLumpy("run '" + fit + "' --out run", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto h0 = Column(dir_ / "run" / "metrics.csv", "model.h0");
  EXPECT_EQ(h0.front(), 66.0);
  EXPECT_NEAR(h0.back(), 70.0, 0.3);
  auto sn = Column(dir_ / "run" / "metrics.csv", "sn");
  EXPECT_LT(sn.back(), 1e-2 * sn.front());
}

// A learned weighting on an objective and on a dataset term (the post's
// "lazy optimizer" trap: sum of L_i / (2 sigma_i^2) + log sigma_i): each
// logged row's loss is exactly 1/2 e^(-2s) w L + s per weighted term (s its
// log sigma that step), and s moves.
TEST_F(TrainTest, AWeightingActsOnObjectivesAndDatasetTerms) {
  const std::string tiny = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/tiny.toml";
  auto r = RunLumpy("run '" + tiny + "' --set 'loss.efe.weighting.plugin=\"homoscedastic\"' "
                    "--set 'loss.efe.weighting.base=\"linear\"' --set loss.efe.weight=2 --out obj", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto run = dir_ / "obj" / "metrics.csv";
  auto loss = Column(run, "loss"), efe = Column(run, "efe"), s = Column(run, "efe.log_sigma"),
       wec = Column(run, "wec.penalty"), penalty = Column(run, "efe.penalty");
  ASSERT_EQ(loss.size(), 6u);
  for (size_t i = 0; i < loss.size(); ++i) {
    const double weighted = 0.5 * std::exp(-2 * s[i]) * 2 * efe[i] + s[i];
    EXPECT_NEAR(penalty[i], weighted, 1e-12 * std::abs(weighted) + 1e-15);
    EXPECT_NEAR(loss[i], weighted + wec[i], 1e-12 * std::abs(loss[i]) + 1e-15) << i;
  }
  EXPECT_NE(s.back(), 0.0);

  const std::string fit = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/sn_fit.toml";
  const std::string lcdm70 = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/flrw_probe.toml";
  ASSERT_EQ(RunLumpy("mock-sn '" + lcdm70 + "' --out mock.dat --n 25 --no-noise --z-max 1.5", dir_).exit_code, 0);
  auto d = RunLumpy("run '" + fit + "' --steps 5 --set 'loss.sn.weighting.plugin=\"homoscedastic\"' "
                    "--set 'loss.sn.weighting.base=\"linear\"' --set loss.sn.weight=3 --out data", dir_);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const auto data = dir_ / "data" / "metrics.csv";
  auto dloss = Column(data, "loss"), sn = Column(data, "sn"), ds = Column(data, "sn.log_sigma");
  for (size_t i = 0; i < dloss.size(); ++i) {
    EXPECT_NEAR(dloss[i], 0.5 * std::exp(-2 * ds[i]) * 3 * sn[i] + ds[i], 1e-12 * std::abs(dloss[i])) << i;
  }
}

TEST_F(TrainTest, OmegaMIsProjectedIntoItsBounds) {
  auto r = RunLumpy("run '" + kEds + "' --set 'loss.efe.omega_m_bounds=[0.05, 0.6]' --out run", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto omega = Column(dir_ / "run" / "metrics.csv", "efe.omega_m");
  for (double v : omega) {
    EXPECT_GE(v, 0.05);
    EXPECT_LE(v, 0.6);
  }
  EXPECT_EQ(omega.back(), 0.6);  // pressed against the bound, held there exactly
}

TEST_F(TrainTest, NothingTrainableIsAConfigError) {
  auto r = RunLumpy("run '" + kEds + "' --set loss.efe.omega_m_trainable=false --steps 3 --out run", dir_);
  // A parameter-free metric with nothing trainable is refused before running,
  // by check as by run, and leaves no run folder behind.
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kEds + ":17:1: model: nothing to train: the flrw metric has no parameters and "
                   "no term declares a trainable physical parameter (e.g. "
                   "loss.<efe>.omega_m_trainable = true)\n");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "run"));
  auto check = RunLumpy("check '" + kEds + "' --set loss.efe.omega_m_trainable=false", dir_);
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_EQ(check.err, r.err);
}

TEST_F(TrainTest, InitialOmegaMOutsideItsBoundsIsAConfigError) {
  auto r = RunLumpy("check '" + kEds + "' --set loss.efe.omega_m=2.5", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "--set loss.efe.omega_m=2.5: loss.efe.omega_m: the initial value must lie "
                   "within omega_m_bounds [0.05, 2], got 2.5\n");
}

}  // namespace
}  // namespace lumpy
