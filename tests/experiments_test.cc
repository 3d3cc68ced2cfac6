// Every experiment shipped under experiments/ validates (`lumpy check`) and
// trains for 20 steps to a completed run with finite values: the smoke test
// that keeps the blog's stages, the quickstart and the baselines runnable.
// An exact metric with nothing to train is read by `lumpy sky` instead.

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> ShippedExperiments() {
  std::vector<std::string> out;
  const fs::path root = fs::path(LUMPY_TEST_SOURCE_DIR) / ".." / "experiments";
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    // The blog's claim files and study file are not experiments (the claims
    // test reads them, claims_test.cc), and results/ holds the resolved
    // copies of runs already made.
    const fs::path rel = fs::relative(e.path(), root);
    if (rel.parent_path().filename() == "claims" || rel.filename() == "study.toml") continue;
    if (rel.string().rfind("blog/results/", 0) == 0) continue;
    if (e.path().extension() == ".toml") out.push_back(rel.string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ShippedExperiment : public testing::TempDirTest,
                          public ::testing::WithParamInterface<std::string> {};

TEST_P(ShippedExperiment, ChecksAndRunsTwentySteps) {
  const fs::path file = fs::path(LUMPY_TEST_SOURCE_DIR) / ".." / "experiments" / GetParam();
  auto check = testing::RunLumpy("check '" + file.string() + "'", dir_);
  if (check.exit_code != 0 && check.err.find("nothing to train") != std::string::npos) {
    // An exact metric shipped to be looked at (the LTB void): `lumpy check`
    // refuses to train it with a located error, and `lumpy sky` reads it.
    EXPECT_NE(check.err.find(GetParam()), std::string::npos) << check.err;
    auto sky = testing::RunLumpy("sky '" + file.string() + "' --bins 4 --no-figures", dir_);
    ASSERT_EQ(sky.exit_code, 0) << sky.err;
    return;
  }
  ASSERT_EQ(check.exit_code, 0) << check.err;
  auto run = testing::RunLumpy("run '" + file.string() +
                                   "' --steps 20 --set certify.points=256 --set telemetry.every=1 "
                                   "--set telemetry.progress=false --out run",
                               dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto summary = nlohmann::json::parse(testing::ReadFile(dir_ / "run" / "summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  EXPECT_EQ(summary["steps"].get<int64_t>(), 20);
  for (const auto& [k, v] : summary["final"].items()) {
    // Where a ray stopped on a bad state is null when none did.
    if (k.find(".bad_") != std::string::npos && v.is_null()) continue;
    EXPECT_TRUE(v.is_number() && std::isfinite(v.get<double>())) << k << " = " << v;
  }
}

INSTANTIATE_TEST_SUITE_P(Experiments, ShippedExperiment, ::testing::ValuesIn(ShippedExperiments()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(0, info.param.size() - 5);
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace lumpy
