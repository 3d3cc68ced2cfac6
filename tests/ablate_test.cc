// `lumpy ablate`: variants as separate processes, a table with every run
// (failed ones with their error), and configuration errors before anything
// runs.

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>

#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "cli/ablate.h"
#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;
using testing::Shell;
using testing::WaitFor;
using AblateTest = testing::TempDirTest;

const std::string kTiny = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/tiny.toml";

TEST(AblateValues, CommasInsideBracketsAndQuotesDoNotSplit) {
  EXPECT_EQ(SplitValues("a,b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SplitValues("[0.05, 0.3],[0.1, 0.2]"), (std::vector<std::string>{"[0.05, 0.3]", "[0.1, 0.2]"}));
  EXPECT_EQ(SplitValues("\"x,y\",z"), (std::vector<std::string>{"\"x,y\"", "z"}));
}

TEST_F(AblateTest, RunsEveryVariantAndTabulatesThemWithFailures) {
  // Three handlers x two seeds, two at a time; a fourth variant whose metric
  // overflows (output_init_std = 1e3: g00 = -exp(o0) is infinite) fails.
  auto r = RunLumpy("ablate '" + kTiny +
                        "' --vary loss.wec.constraint.plugin=soft_quadratic,linear,augmented_lagrangian"
                        " --seeds 2 --jobs 2 --set certify.points=16 --out abl",
                    dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(ReadFile(dir_ / "abl" / "ablation.csv"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 6u) << ReadFile(dir_ / "abl" / "ablation.csv");
  EXPECT_EQ(lines[0].rfind("variant,seed,status,steps,wall_time_s,loss,efe,wec,", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("loss.wec.constraint.plugin=soft_quadratic,11,completed,6,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("loss.wec.constraint.plugin=soft_quadratic,12,completed,6,", 0), 0u) << lines[2];
  EXPECT_EQ(lines[6].rfind("loss.wec.constraint.plugin=augmented_lagrangian,12,completed,6,", 0), 0u) << lines[6];
  EXPECT_TRUE(fs::exists(dir_ / "abl" / "v03-augmented_lagrangian-seed12" / "summary.json"));
  const std::string md = ReadFile(dir_ / "abl" / "ablation.md");
  EXPECT_NE(md.find("| loss.wec.constraint.plugin=linear | 11 | completed | 6 |"), std::string::npos) << md;
  EXPECT_TRUE(fs::exists(dir_ / "abl" / "ablation.png"));
  // The handlers' final state, each handler's own columns, and the variants
  // over their two seeds: mean ± standard deviation.
  EXPECT_NE(lines[0].find(",wec.penalty,"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(",wec.lambda,"), std::string::npos) << lines[0];
  EXPECT_NE(md.find("## Over seeds (mean ± standard deviation over the finished runs)"), std::string::npos) << md;
  EXPECT_NE(md.find("| loss.wec.constraint.plugin=linear | 2 | 6 ± 0 |"), std::string::npos) << md;

  auto f = RunLumpy("ablate '" + kTiny + "' --vary model.output_init_std=0.05,1e3 --out bad", dir_);
  EXPECT_EQ(f.exit_code, 1) << f.err;
  std::vector<std::string> bad = absl::StrSplit(ReadFile(dir_ / "bad" / "ablation.csv"), '\n', absl::SkipEmpty());
  ASSERT_EQ(bad.size(), 3u);
  EXPECT_NE(bad[1].find(",completed,"), std::string::npos) << bad[1];
  EXPECT_NE(bad[2].find(",failed,"), std::string::npos) << bad[2];
  EXPECT_NE(bad[2].find("is nan"), std::string::npos) << bad[2];
}

// A signal sent to ablate alone (`kill PID`, a batch system's SIGTERM) is
// passed on to its running runs, each of which checkpoints and stops as `lumpy
// run` does on it; nothing more is started; the table marks the stopped runs
// and the one never started as not finished. The runs used to go on as
// orphans after ablate had gone.
TEST_F(AblateTest, ASignalToAblateStopsItsRunsCleanly) {
  ASSERT_EQ(Shell("(\"$LUMPY\" ablate " + kTiny +
                      " --vary loss.wec.constraint.plugin=soft_quadratic,linear,augmented_lagrangian --jobs 2"
                      " --set runtime.steps=10000000 --out abl >out 2>err & echo $! >pid; wait $!; echo $? >rc) &",
                  dir_),
            0);
  const fs::path abl = dir_ / "abl";
  auto logged = [&](const char* variant) {
    const std::string csv = ReadFile(abl / variant / "metrics.csv");
    return std::count(csv.begin(), csv.end(), '\n') >= 3;
  };
  ASSERT_TRUE(WaitFor([&] { return logged("v01-soft_quadratic-seed11") && logged("v02-linear-seed11"); }, 120)) << ReadFile(dir_ / "err");
  ::kill(std::stoi(ReadFile(dir_ / "pid")), SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ / "rc"); }, 120)) << ReadFile(dir_ / "err");
  EXPECT_EQ(ReadFile(dir_ / "rc"), std::to_string(128 + SIGTERM) + "\n");
  for (const char* variant : {"v01-soft_quadratic-seed11", "v02-linear-seed11"}) {
    auto summary = nlohmann::json::parse(ReadFile(abl / variant / "summary.json"), nullptr, false);
    ASSERT_TRUE(summary.is_object()) << variant;
    EXPECT_EQ(summary["status"], "interrupted") << variant;
  }
  EXPECT_FALSE(fs::exists(abl / "v03-augmented_lagrangian-seed11"));
  const std::string csv = ReadFile(abl / "ablation.csv");
  EXPECT_NE(csv.find("loss.wec.constraint.plugin=soft_quadratic,11,interrupted,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("loss.wec.constraint.plugin=augmented_lagrangian,11,pending,"), std::string::npos) << csv;
  const std::string err = ReadFile(dir_ / "err");
  EXPECT_NE(err.find("asked 2 running run(s) to checkpoint and stop; 1 not started"), std::string::npos) << err;
  EXPECT_NE(err.find("resumes with lumpy resume"), std::string::npos) << err;
  // --collect later reads the same states: nothing failed (exit 0).
  auto collected = RunLumpy("ablate --collect abl", dir_);
  EXPECT_EQ(collected.exit_code, 0) << collected.err;
  const std::string again = ReadFile(abl / "ablation.csv");
  EXPECT_NE(again.find("loss.wec.constraint.plugin=linear,11,interrupted,"), std::string::npos) << again;
  EXPECT_NE(again.find("loss.wec.constraint.plugin=augmented_lagrangian,11,pending,"), std::string::npos) << again;
  // And a stopped run resumes.
  const auto stopped = nlohmann::json::parse(ReadFile(abl / "v01-soft_quadratic-seed11" / "summary.json"), nullptr, false);
  ASSERT_TRUE(stopped.contains("steps") && stopped["steps"].is_number_integer());
  auto resumed = RunLumpy("resume abl/v01-soft_quadratic-seed11 --steps " +
                              std::to_string(stopped["steps"].get<int64_t>() + 3), dir_);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
}

TEST_F(AblateTest, BadVaryIsAConfigErrorBeforeAnythingRuns) {
  auto unknown = RunLumpy("ablate '" + kTiny + "' --vary loss.wec.constraint.wieght=1,2 --out a", dir_);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("--vary loss.wec.constraint.wieght=1: --set loss.wec.constraint.wieght=1: "
                             "loss.wec.constraint.wieght: unknown key; did you mean \"weight\"?"),
            std::string::npos)
      << unknown.err;
  EXPECT_FALSE(fs::exists(dir_ / "a"));
  auto type = RunLumpy("ablate '" + kTiny + "' --vary runtime.steps=3,many --out b", dir_);
  EXPECT_EQ(type.exit_code, 2);
  EXPECT_NE(type.err.find("runtime.steps: expected int"), std::string::npos) << type.err;
  EXPECT_FALSE(fs::exists(dir_ / "b"));
  auto shape = RunLumpy("ablate '" + kTiny + "' --vary runtime.steps --out c", dir_);
  EXPECT_EQ(shape.exit_code, 2);
  EXPECT_NE(shape.err.find("expected KEY=V1,V2,..."), std::string::npos) << shape.err;
  auto seeds = RunLumpy("ablate '" + kTiny + "' --vary runtime.seed=3,4 --seeds 2 --out d", dir_);
  EXPECT_EQ(seeds.exit_code, 2);
  EXPECT_NE(seeds.err.find("--vary runtime.seed=... and --seeds 2: give one of them"), std::string::npos) << seeds.err;
}

// A varied runtime.seed is the seed of its runs (it once was overridden by
// the experiment's seed, and the folders named that one).
TEST_F(AblateTest, AVariedSeedIsTheRunsSeed) {
  auto r = RunLumpy("ablate '" + kTiny + "' --vary runtime.seed=3,4 --set runtime.steps=2 --out s", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int seed : {3, 4}) {
    const auto dir = dir_ / "s" / ("v0" + std::to_string(seed - 2) + "-" + std::to_string(seed) + "-seed" + std::to_string(seed));
    ASSERT_TRUE(fs::exists(dir / "summary.json")) << dir;
    EXPECT_EQ(nlohmann::json::parse(testing::ReadFile(dir / "summary.json"))["runtime"]["seed"].get<int64_t>(), seed);
  }
}

// --seeds alone sweeps the experiment itself over seeds (a stage's spread
// over seeds); it once demanded a --vary.
TEST_F(AblateTest, SeedsAloneSweepTheExperimentItself) {
  auto r = RunLumpy("ablate '" + kTiny + "' --seeds 2 --set runtime.steps=2 --out s", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int seed : {11, 12}) {
    const auto dir = dir_ / "s" / ("v01-seed" + std::to_string(seed));
    ASSERT_TRUE(fs::exists(dir / "summary.json")) << dir;
    EXPECT_EQ(nlohmann::json::parse(testing::ReadFile(dir / "summary.json"))["runtime"]["seed"].get<int64_t>(), seed);
  }
  std::vector<std::string> lines = absl::StrSplit(ReadFile(dir_ / "s" / "ablation.csv"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].rfind(",11,completed,2,", 0), 0u) << lines[1];
  auto none = RunLumpy("ablate '" + kTiny + "' --out n", dir_);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("--seeds N alone"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace lumpy
