// One training over several processes (train/ranks.h, `lumpy run --ranks N`,
// srun): the same rows as one process to reduction-order rounding, a
// checkpoint that resumes on another number of ranks, a rank that dies
// stopping the others, and the bad input.

#include <gtest/gtest.h>

#include <signal.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;
using RanksTest = testing::TempDirTest;

const std::string kRanks = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/ranks.toml";

// metrics.csv as numbers: column name -> one value per row (wall time left out).
std::map<std::string, std::vector<double>> Table(const fs::path& csv) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
  std::map<std::string, std::vector<double>> out;
  if (lines.empty()) return out;
  std::vector<std::string> names = absl::StrSplit(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> fields = absl::StrSplit(lines[i], ',');
    for (size_t k = 0; k < names.size() && k < fields.size(); ++k) {
      if (names[k] != "wall_time_s") out[names[k]].push_back(std::stod(fields[k]));
    }
  }
  return out;
}

// The largest relative difference between two tables, and where.
std::pair<double, std::string> Difference(const std::map<std::string, std::vector<double>>& a,
                                          const std::map<std::string, std::vector<double>>& b) {
  double worst = 0;
  std::string where;
  for (const auto& [name, column] : a) {
    const auto& other = b.at(name);
    EXPECT_EQ(column.size(), other.size()) << name;
    for (size_t i = 0; i < column.size() && i < other.size(); ++i) {
      const double x = column[i], y = other[i];
      if (std::isnan(x) && std::isnan(y)) continue;
      const double d = x == y ? 0 : std::abs(x - y) / std::max({std::abs(x), std::abs(y), 1e-300});
      if (d > worst) worst = d, where = name + " row " + std::to_string(i);
    }
  }
  return {worst, where};
}

// 2 ranks and 1, float64, 20 steps: every row agrees to 1e-10 relative (the
// sums over ranks change only the order of additions).
TEST_F(RanksTest, TwoRanksTrainAsOneProcess) {
  auto one = RunLumpy("run '" + kRanks + "' --out one", dir_);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = RunLumpy("run '" + kRanks + "' --ranks 2 --out two", dir_);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto a = Table(dir_ / "one" / "metrics.csv"), b = Table(dir_ / "two" / "metrics.csv");
  ASSERT_EQ(a.at("step").size(), 20u);
  const auto [worst, where] = Difference(a, b);
  EXPECT_LT(worst, 1e-10) << "largest relative difference " << worst << " in " << where;
  // Rank 0 alone wrote the folder: one summary, no store file left behind.
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir_ / "two" / "summary.json"))["status"], "completed");
  for (const auto& e : fs::directory_iterator(dir_ / "two")) {
    EXPECT_EQ(e.path().filename().string().rfind(".c10d_store", 0), std::string::npos) << e.path();
  }
}

// Physical rays, 4 direction bins shared between 2 ranks (each traces 2):
// the same supernovae are reached, and the rows agree to 1e-3. Not to
// round-off: the rays of a batch share one step size, so the two halves
// save other states than the whole, and a ray's largest z (which the
// shortfall towards unreached supernovae is measured from) is read at its
// saved states.
TEST_F(RanksTest, PhysicalRaysAreSharedBetweenRanks) {
  const std::string physical =
      " --set loss.sn.mode=physical --set loss.sn.bins=4 --set loss.sn.rtol=1e-10 --set loss.sn.atol=1e-12 --steps 5";
  ASSERT_EQ(RunLumpy("run '" + kRanks + "'" + physical + " --out one", dir_).exit_code, 0);
  auto two = RunLumpy("run '" + kRanks + "'" + physical + " --ranks 2 --out two", dir_);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  auto a = Table(dir_ / "one" / "metrics.csv"), b = Table(dir_ / "two" / "metrics.csv");
  EXPECT_EQ(a.at("sn.unreached"), b.at("sn.unreached"));
  for (auto* t : {&a, &b}) {  // the integrator's counts differ by construction
    for (const char* k : {"sn.ray_steps", "sn.ray_rejected"}) t->erase(k);
  }
  const auto [worst, where] = Difference(a, b);
  EXPECT_LT(worst, 1e-3) << "largest relative difference " << worst << " in " << where;
}

// A checkpoint is the whole state, whatever the number of ranks: killed
// after step 12 on 2 ranks (the checkpoint after step 9: checkpoint.every
// is 10), resumed on 1, and the other way round, each ends on the rows of
// an unbroken run to 1e-10.
TEST_F(RanksTest, CheckpointsResumeOnAnotherNumberOfRanks) {
  const std::string every = " --set checkpoint.every=10 --set checkpoint.every_minutes=0";
  ASSERT_EQ(RunLumpy("run '" + kRanks + "'" + every + " --out whole", dir_).exit_code, 0);
  const auto reference = Table(dir_ / "whole" / "metrics.csv");
  setenv("LUMPY_FAULT", "kill-after-step:12", 1);
  auto killed2 = RunLumpy("run '" + kRanks + "'" + every + " --ranks 2 --out from2", dir_);
  auto killed1 = RunLumpy("run '" + kRanks + "'" + every + " --out from1", dir_);
  unsetenv("LUMPY_FAULT");
  EXPECT_NE(killed2.exit_code, 0);
  EXPECT_NE(killed1.exit_code, 0);
  auto r1 = RunLumpy("resume from2", dir_);
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  auto r2 = RunLumpy("resume from1 --ranks 2", dir_);
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  for (const char* run : {"from2", "from1"}) {
    EXPECT_EQ(nlohmann::json::parse(ReadFile(dir_ / run / "summary.json"))["resumed_at_step"], 10) << run;
    const auto [worst, where] = Difference(reference, Table(dir_ / run / "metrics.csv"));
    EXPECT_LT(worst, 1e-10) << run << ": " << worst << " in " << where;
  }
}

// Rank 1 dies (SIGKILL after step 12): rank 0 loses it, the launcher says
// which rank ended how and stops; the folder resumes on 1 rank.
TEST_F(RanksTest, ARankThatDiesStopsTheOthersAndTheRunResumes) {
  setenv("LUMPY_FAULT", "kill-after-step:12:1", 1);
  auto r = RunLumpy("run '" + kRanks + "' --set checkpoint.every=10 --ranks 2 --out dead", dir_);
  unsetenv("LUMPY_FAULT");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1 of 2 ended with status " + std::to_string(128 + SIGKILL)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lost the other ranks"), std::string::npos) << r.err;
  auto resumed = RunLumpy("resume dead", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir_ / "dead" / "summary.json"))["status"], "completed");
}

TEST_F(RanksTest, RanksMustBeAtLeastOne) {
  for (const char* n : {"0", "-2", "x"}) {
    auto r = RunLumpy("run '" + kRanks + "' --ranks " + std::string(n) + " --out z", dir_);
    EXPECT_EQ(r.exit_code, 2) << n;
    EXPECT_NE(r.err.find("--ranks: must be a whole number from 1 to 256"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace lumpy
