// `lumpy ablate --executor slurm` against a real one-node Slurm cluster
// (tests/slurm/cluster.sh starts munged, slurmctld and slurmd under a
// temporary folder, as root), and one training spread over an srun step's
// tasks. Without root or Slurm the tests are skipped, saying what is missing
// (never silently).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/str_split.h"
#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;
using testing::WaitFor;

const std::string kTiny = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/tiny.toml";
const std::string kEngine = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/engine.toml";
const std::string kCluster = std::string(LUMPY_TEST_SOURCE_DIR) + "/slurm/cluster.sh";
const std::string kRanks = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/ranks.toml";

std::string Shell(const std::string& command, int* rc = nullptr) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class SlurmTest : public testing::TempDirTest {
 protected:
  static void SetUpTestSuite() {
    cluster_ = fs::temp_directory_path() / ("lumpy_slurm_" + std::to_string(::getpid()));
    fs::create_directories(cluster_);
    int rc = 0;
    const std::string out = Shell("bash '" + kCluster + "' start '" + cluster_.string() + "'", &rc);
    if (rc == 0) {
      setenv("SLURM_CONF", (cluster_ / "slurm.conf").c_str(), 1);
    } else {
      error_ = out;
    }
  }
  static void TearDownTestSuite() {
    Shell("bash '" + kCluster + "' stop '" + cluster_.string() + "'");
    fs::remove_all(cluster_);
  }
  void SetUp() override {
    testing::TempDirTest::SetUp();
    if (!error_.empty()) GTEST_SKIP() << "no Slurm cluster for the tests: " << error_;
  }
  static fs::path cluster_;
  static std::string error_;
};
fs::path SlurmTest::cluster_;
std::string SlurmTest::error_;

// ablation.csv without the wall-time column, by variant and seed.
std::map<std::string, std::string> Table(const fs::path& csv) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
  std::vector<std::string> header = absl::StrSplit(lines.at(0), ',');
  std::map<std::string, std::string> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    std::string row;
    for (size_t j = 0; j < f.size() && j < header.size(); ++j) {
      if (header[j] != "wall_time_s") row += f[j] + ",";
    }
    out[f[0] + " seed " + f[1]] = row;
  }
  return out;
}

// A 2-variant x 2-seed sweep of 10 steps through Slurm gives the local
// executor's table; the script gives each task its own log.
TEST_F(SlurmTest, ASweepThroughSlurmGivesTheLocalTable) {
  const std::string sweep = "ablate '" + kTiny + "' --vary optimizer.lr=1e-3,1e-4 --seeds 2 " +
                            "--set runtime.steps=10 --set runtime.threads=1";
  auto local = RunLumpy(sweep + " --out local", dir_);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  auto slurm = RunLumpy(sweep + " --executor slurm --poll 0.2 --out slurm", dir_);
  ASSERT_EQ(slurm.exit_code, 0) << slurm.err;
  EXPECT_NE(slurm.err.find("0 pending, 0 running, 4 done, 0 failed"), std::string::npos) << slurm.err;
  const auto table = Table(dir_ / "slurm" / "ablation.csv");
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table, Table(dir_ / "local" / "ablation.csv"));
  const std::string script = ReadFile(dir_ / "slurm" / "sweep.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=0-3\n"), std::string::npos) << script;
  EXPECT_NE(script.find("_%a.out"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --requeue\n"), std::string::npos);
  EXPECT_NE(script.find("#SBATCH --signal=B:USR1@120\n"), std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "slurm" / "logs"), fs::directory_iterator()), 4);
}

// A variant that fails at run time is reported with its error while the
// others complete.
TEST_F(SlurmTest, AFailingVariantIsReportedWhileTheOthersComplete) {
  auto r = RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3,1e300 --set runtime.steps=10 " +
                        "--executor slurm --poll 0.2 --out s",
                    dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("1 done, 1 failed"), std::string::npos) << r.err;
  const std::string csv = ReadFile(dir_ / "s" / "ablation.csv");
  EXPECT_NE(csv.find("optimizer.lr=1e-3,11,completed"), std::string::npos) << csv;
  EXPECT_NE(csv.find("optimizer.lr=1e300,11,failed"), std::string::npos) << csv;
  EXPECT_NE(csv.find("is nan; stopping"), std::string::npos) << csv;
}

// --no-wait returns the job id; --collect builds the table of what finished
// and marks the task still pending.
TEST_F(SlurmTest, CollectMarksTheTasksThatHaveNotRun) {
  auto r = RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3,1e-4 --set runtime.steps=10 " +
                        "--executor slurm --no-wait --sbatch-arg=--hold --out s",
                    dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string job = r.out;
  job.erase(job.find_last_not_of("\n") + 1);
  ASSERT_FALSE(job.empty());
  int rc = 0;
  Shell("scontrol release " + job + "_0", &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ / "s" / "v01-1e-3-seed11.exit"); }, 60));
  auto collect = RunLumpy("ablate --collect s", dir_);
  EXPECT_EQ(collect.exit_code, 0) << collect.err;
  EXPECT_NE(collect.err.find("1 not finished yet"), std::string::npos) << collect.err;
  const std::string csv = ReadFile(dir_ / "s" / "ablation.csv");
  EXPECT_NE(csv.find("optimizer.lr=1e-3,11,completed"), std::string::npos) << csv;
  EXPECT_NE(csv.find("optimizer.lr=1e-4,11,pending"), std::string::npos) << csv;
  Shell("scancel " + job);
}

// Submits a single-task sweep of the engine experiment (float64, one thread,
// 1500 steps), interrupts its task once it has a checkpoint with
// `interrupt` + " JOB_0", lets the requeued task start at once (Slurm makes
// a requeued job wait; the test does not) and checks that it resumed and
// ended with the metrics rows of an uninterrupted run. Returns Slurm's own
// logs of the task.
std::string InterruptAndCompare(const fs::path& dir, const std::string& interrupt) {
  const std::string sets = "--set runtime.steps=1500 --set runtime.threads=1";
  auto r = RunLumpy("ablate '" + kEngine + "' --vary checkpoint.every=50 " + sets + " --executor slurm --no-wait --out s", dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string job = r.out;
  job.erase(job.find_last_not_of("\n") + 1);
  const fs::path run = dir / "s" / "v01-50-seed5", log = dir / "s" / "v01-50-seed5.log";
  EXPECT_TRUE(WaitFor([&] { return fs::exists(run / "checkpoints" / "latest.pt"); }, 120)) << ReadFile(log);
  int rc = 0;
  const std::string said = Shell(interrupt + " " + job + "_0", &rc);
  EXPECT_EQ(rc, 0) << said;
  EXPECT_TRUE(WaitFor([&] { return Shell("squeue -h -r -j " + job + " -o %T").find("PENDING") != std::string::npos; }, 60))
      << ReadFile(log);
  Shell("scontrol update JobId=" + job + "_0 StartTime=now");
  EXPECT_TRUE(WaitFor([&] { return fs::exists(dir / "s" / "v01-50-seed5.exit"); }, 240)) << ReadFile(log);
  EXPECT_EQ(ReadFile(dir / "s" / "v01-50-seed5.exit"), "0\n");
  EXPECT_NE(ReadFile(log).find("resuming"), std::string::npos) << ReadFile(log);
  auto whole = RunLumpy("run '" + kEngine + "' --set telemetry.progress=false " + sets + " --out whole", dir);
  EXPECT_EQ(whole.exit_code, 0) << whole.err;
  auto rows = [](const fs::path& csv) {
    std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
    for (auto& l : lines) l = l.substr(0, l.rfind(','));  // without the wall time
    return lines;
  };
  EXPECT_EQ(rows(run / "metrics.csv"), rows(dir / "whole" / "metrics.csv"));
  EXPECT_EQ(rows(run / "metrics.csv").size(), 1501u);
  std::string slurm_log;
  for (const auto& e : fs::directory_iterator(dir / "s" / "logs")) slurm_log += ReadFile(e.path());
  return slurm_log;
}

// A task requeued mid-run (scontrol requeue: Slurm stops it, the run
// checkpoints, the task runs again and resumes).
TEST_F(SlurmTest, ARequeuedTaskContinuesOnTheSameTrajectory) {
  InterruptAndCompare(dir_, "scontrol requeue");
}

// Slurm's warning before the time limit (USR1 to the batch script, as
// --signal=B:USR1@120 sends it; here by scancel): the script stops the run,
// which checkpoints, and requeues its own task, which resumes.
TEST_F(SlurmTest, TheTimeLimitWarningCheckpointsAndRequeues) {
  const std::string slurm_log = InterruptAndCompare(dir_, "scancel --batch --signal=USR1");
  EXPECT_NE(slurm_log.find("checkpointed before the time limit; requeued"), std::string::npos) << slurm_log;
}

// Bad input: no sbatch on the PATH, a partition Slurm does not know (its
// refusal shown), --collect on a folder that is not a sweep: exit 2, nothing
// submitted.
TEST_F(SlurmTest, BadInputIsRefusedBeforeAnythingIsSubmitted) {
  const std::string sweep = "ablate '" + kTiny + "' --vary optimizer.lr=1e-3 --set runtime.steps=10 --executor slurm";
  auto no_sbatch = RunLumpy("--help >/dev/null; PATH=/nonexistent '" + std::string(LUMPY_TEST_BINARY) + "' " + sweep + " --out a", dir_);
  EXPECT_EQ(no_sbatch.exit_code, 2) << no_sbatch.err;
  EXPECT_NE(no_sbatch.err.find("no sbatch or squeue on the PATH"), std::string::npos) << no_sbatch.err;
  auto partition = RunLumpy(sweep + " --partition nosuch --out b", dir_);
  EXPECT_EQ(partition.exit_code, 2) << partition.err;
  EXPECT_NE(partition.err.find("sbatch refused the sweep (nothing was submitted)"), std::string::npos) << partition.err;
  EXPECT_NE(partition.err.find("invalid partition"), std::string::npos) << partition.err;
  EXPECT_FALSE(fs::exists(dir_ / "b" / "sweep.json"));
  fs::create_directories(dir_ / "c");
  auto collect = RunLumpy("ablate --collect c", dir_);
  EXPECT_EQ(collect.exit_code, 2);
  EXPECT_NE(collect.err.find("c: not a sweep folder (no sweep.json"), std::string::npos) << collect.err;
}

// `srun -n 2 lumpy run ... --out DIR`: the ranks come from Slurm's
// environment (SLURM_PROCID, SLURM_NTASKS) and meet in the run folder; the
// rows are one process's to 1e-10 (only the order of additions changes).
TEST_F(SlurmTest, SrunSpreadsOneTrainingOverItsTasks) {
  auto one = RunLumpy("run '" + kRanks + "' --out one", dir_);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  int rc = 0;
  const std::string out = Shell("cd '" + dir_.string() + "' && LUMPY_RANKS_TIMEOUT=60 LUMPY_PLUGIN_PATH= srun -n 2 --cpus-per-task=1 '" +
                                    std::string(LUMPY_TEST_BINARY) + "' run '" + kRanks + "' --out viasrun",
                                &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("on 2 ranks"), std::string::npos) << out;
  auto rows = [](const fs::path& csv) {
    std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
    std::vector<std::vector<double>> table;
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> f = absl::StrSplit(lines[i], ',');
      f.pop_back();  // wall time
      std::vector<double> row;
      for (const auto& v : f) row.push_back(std::stod(v));
      table.push_back(row);
    }
    return table;
  };
  const auto a = rows(dir_ / "one" / "metrics.csv"), b = rows(dir_ / "viasrun" / "metrics.csv");
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t k = 0; k < a[i].size(); ++k) {
      const double x = a[i][k], y = b[i][k];
      if (std::isnan(x) && std::isnan(y)) continue;
      if (x != y) worst = std::max(worst, std::abs(x - y) / std::max(std::abs(x), std::abs(y)));
    }
  }
  EXPECT_LT(worst, 1e-10);
  // Without --out every task would pick its own folder: refused.
  const std::string no_out = Shell("cd '" + dir_.string() + "' && LUMPY_PLUGIN_PATH= srun -n 2 '" +
                                       std::string(LUMPY_TEST_BINARY) + "' run '" + kRanks + "'",
                                   &rc);
  EXPECT_EQ(rc, 2) << no_out;
  EXPECT_NE(no_out.find("under srun with several tasks, give --out"), std::string::npos) << no_out;
}

}  // namespace
}  // namespace lumpy
