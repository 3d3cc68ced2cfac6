// The command line as a user meets it: exit statuses, the run folder,
// reproducibility, overrides.

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "cli_runner.h"
#include "temp_dir.h"
#include "lumpy/build_info.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;

const std::string kTiny = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/tiny.toml";

using CliTest = testing::TempDirTest;

// metrics.csv without its wall-time column.
std::vector<std::string> MetricsWithoutTime(const fs::path& run) {
  std::vector<std::string> rows;
  for (absl::string_view line : absl::StrSplit(ReadFile(run / "metrics.csv"), '\n', absl::SkipEmpty())) {
    std::string row(line);
    rows.push_back(row.substr(0, row.rfind(',')));
  }
  return rows;
}

TEST_F(CliTest, HelpAndVersion) {
  auto help = RunLumpy("--help", dir_);
  EXPECT_EQ(help.exit_code, 0);
  for (const char* word : {"run", "resume", "check", "plugins", "--version"}) {
    EXPECT_NE(help.out.find(word), std::string::npos) << word;
  }
  for (const char* sub : {"run", "resume", "check", "plugins"}) {
    auto r = RunLumpy(std::string(sub) + " --help", dir_);
    EXPECT_EQ(r.exit_code, 0) << sub;
  }
  auto version = RunLumpy("--version", dir_);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, "lumpy " LUMPY_VERSION_STRING "\n");
}

TEST_F(CliTest, UsageErrorsExitWith2) {
  EXPECT_EQ(RunLumpy("frobnicate", dir_).exit_code, 2);
  EXPECT_EQ(RunLumpy("run --steps -3", dir_).exit_code, 2);
  EXPECT_EQ(RunLumpy("check", dir_).exit_code, 2);
  auto missing = RunLumpy("check no_such.toml", dir_);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "no_such.toml: no such experiment file\n");
}

// Numeric options are checked as their TOML twins are, in words (CLI11's own
// check printed a 309-digit maximum and clamped 1e23 to 2^63-1); a --set
// value hiding a second assignment on another line, and a run folder with a
// file in its place, are usage errors.
TEST_F(CliTest, OptionsAreCheckedAsTheirTomlTwinsAndNothingIsDroppedSilently) {
  auto negative = RunLumpy("run '" + kTiny + "' --steps -5", dir_);
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_NE(negative.err.find("--steps: must be >= 1, got -5"), std::string::npos) << negative.err;
  EXPECT_LT(negative.err.size(), 200u) << negative.err;
  auto huge = RunLumpy("run '" + kTiny + "' --steps 99999999999999999999999", dir_);
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_NE(huge.err.find("got 99999999999999999999999 (beyond 64 bits)"), std::string::npos) << huge.err;
  auto fraction = RunLumpy("resume r --steps 2.5", dir_);
  EXPECT_EQ(fraction.exit_code, 2);
  EXPECT_NE(fraction.err.find("must be a whole number >= 1, got 2.5"), std::string::npos) << fraction.err;
  auto jobs = RunLumpy("ablate '" + kTiny + "' --jobs 0 --vary runtime.seed=1,2", dir_);
  EXPECT_EQ(jobs.exit_code, 2);
  EXPECT_NE(jobs.err.find("must be in [1, 1024], got 0"), std::string::npos) << jobs.err;

  auto two_lines = RunLumpy("check '" + kTiny + "' --set 'runtime.steps=5\nruntime.seed=3'", dir_);
  EXPECT_EQ(two_lines.exit_code, 2);
  EXPECT_NE(two_lines.err.find("--set runtime.steps: the value holds more than one TOML value"),
            std::string::npos) << two_lines.err;
  auto array = RunLumpy("check '" + kTiny + "' --set 'domains.bulk.x=[-1.0,\n 1.0]'", dir_);
  EXPECT_EQ(array.exit_code, 0) << array.err;  // one value over two lines is fine

  { std::ofstream f(dir_ / "a_file"); f << "x\n"; }
  auto onto_file = RunLumpy("run '" + kTiny + "' --out a_file", dir_);
  EXPECT_EQ(onto_file.exit_code, 2);
  EXPECT_NE(onto_file.err.find("cannot create run folder a_file: Not a directory (a file is in the way"),
            std::string::npos) << onto_file.err;
}

// Every input is checked before it is opened: a directory, a FIFO or a
// device where a file belongs is refused as such (a pipe or /dev/zero would
// be read for ever), and a file over its kind's limit is refused naming the
// limit and LUMPY_MAX_INPUT_MB.
TEST_F(CliTest, NonRegularAndOversizedInputsAreRefusedAtOnce) {
  fs::create_directory(dir_ / "a_dir.toml");
  ASSERT_EQ(::mkfifo((dir_ / "pipe.toml").c_str(), 0600), 0);
  auto directory = RunLumpy("check a_dir.toml", dir_);
  EXPECT_EQ(directory.exit_code, 2);
  EXPECT_EQ(directory.err, "a_dir.toml: is a directory; the experiment file must be a regular file\n");
  auto fifo = RunLumpy("check pipe.toml", dir_);
  EXPECT_EQ(fifo.exit_code, 2);
  EXPECT_EQ(fifo.err, "pipe.toml: is a FIFO (named pipe); the experiment file must be a regular file\n");
  auto device = RunLumpy("probe '" + kTiny + "' --points /dev/zero --out o.csv", dir_);
  EXPECT_EQ(device.exit_code, 2);
  EXPECT_EQ(device.err, "/dev/zero: is a character device; the points file must be a regular file\n");
  // A supernova catalogue that is a folder.
  fs::create_directory(dir_ / "catalogue");
  {
    std::ofstream f(dir_ / "sn.toml");
    f << "extends = \"" << kTiny << "\"\n[loss.sn]\nplugin = \"supernova_chi2\"\ndata = \"catalogue\"\n";
  }
  auto catalogue = RunLumpy("run sn.toml --out r", dir_);
  EXPECT_EQ(catalogue.exit_code, 2) << catalogue.err;
  EXPECT_NE(catalogue.err.find("catalogue: is a directory; the supernova catalogue must be a regular file"),
            std::string::npos)
      << catalogue.err;
  // Over the limit: a 2 MiB experiment (comments) with the limit at 1 MiB.
  {
    std::ofstream f(dir_ / "big.toml");
    const std::string line(1023, '#');
    for (int i = 0; i < 2048; ++i) f << line << "\n";
  }
  setenv("LUMPY_MAX_INPUT_MB", "1", 1);
  auto big = RunLumpy("check big.toml", dir_);
  unsetenv("LUMPY_MAX_INPUT_MB");
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_EQ(big.err, "big.toml: 2 MiB, over the 1 MiB limit for the experiment file (LUMPY_MAX_INPUT_MB raises it)\n");
}

TEST_F(CliTest, RunWritesTheRunFolder) {
  auto r = RunLumpy("run '" + kTiny + "' --out run1", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path run = dir_ / "run1";
  for (const char* f : {"experiment.toml", "metrics.csv", "summary.json", "model.pt"}) {
    EXPECT_TRUE(fs::exists(run / f)) << f;
  }
  auto rows = MetricsWithoutTime(run);
  ASSERT_EQ(rows.size(), 7u);  // header + 6 steps (every = 1)
  EXPECT_EQ(ReadFile(run / "metrics.csv").substr(0, 47),
            "step,loss,efe,wec,wec.penalty,lr,wall_time_s\n0,");
  auto summary = nlohmann::json::parse(ReadFile(run / "summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  EXPECT_EQ(summary["steps"], 6);
  EXPECT_EQ(summary["points_per_step"], 9);
  EXPECT_EQ(summary["runtime"]["threads"], 1);
  EXPECT_EQ(summary["runtime"]["dtype"], "float64");
  EXPECT_TRUE(summary["final"].contains("efe"));
  // The resolved experiment holds every default.
  const std::string resolved = ReadFile(run / "experiment.toml");
  for (const char* key : {"omega0 = 1.0", "det_floor = 1e-24", "clip_norm = 1.0", "beta2 = 0.999"}) {
    EXPECT_NE(resolved.find(key), std::string::npos) << key;
  }
}

TEST_F(CliTest, SameSeedSameMetricsAndTheResolvedFileRepeatsTheRun) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --out a", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --out b", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("run a/experiment.toml --out c", dir_).exit_code, 0);
  EXPECT_EQ(MetricsWithoutTime(dir_ / "a"), MetricsWithoutTime(dir_ / "b"));
  EXPECT_EQ(MetricsWithoutTime(dir_ / "a"), MetricsWithoutTime(dir_ / "c"));
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --set runtime.seed=12 --out d", dir_).exit_code, 0);
  EXPECT_NE(MetricsWithoutTime(dir_ / "a"), MetricsWithoutTime(dir_ / "d"));
}

TEST_F(CliTest, OverridesAreTypedAndCheckedBeforeAnythingRuns) {
  auto r = RunLumpy("run '" + kTiny + "' --set runtime.steps=abc --out x", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "--set runtime.steps=abc: runtime.steps: expected int, got string \"abc\"\n");
  EXPECT_FALSE(fs::exists(dir_ / "x"));
  auto ok = RunLumpy("run '" + kTiny + "' --set runtime.steps=2 --set runtime.dtype=float32 --out y",
                     dir_);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto summary = nlohmann::json::parse(ReadFile(dir_ / "y" / "summary.json"));
  EXPECT_EQ(summary["steps"], 2);
  EXPECT_EQ(summary["runtime"]["dtype"], "float32");
  EXPECT_NE(ReadFile(dir_ / "y" / "experiment.toml").find("dtype = 'float32'"), std::string::npos);
}

TEST_F(CliTest, StepsFlagOverridesAndIsRecorded) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 3 --out s", dir_).exit_code, 0);
  EXPECT_EQ(MetricsWithoutTime(dir_ / "s").size(), 4u);
  EXPECT_NE(ReadFile(dir_ / "s" / "experiment.toml").find("steps = 3"), std::string::npos);
}

TEST_F(CliTest, ThreadsAreAppliedToLibTorch) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 1 --set runtime.threads=2 --out t", dir_).exit_code, 0);
  auto summary = nlohmann::json::parse(ReadFile(dir_ / "t" / "summary.json"));
  EXPECT_EQ(summary["runtime"]["threads"], 2);
}

TEST_F(CliTest, NeverOverwritesARun) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 1 --out r", dir_).exit_code, 0);
  auto again = RunLumpy("run '" + kTiny + "' --steps 1 --out r", dir_);
  EXPECT_EQ(again.exit_code, 2);
  const std::string refusal = "r: already holds a run; choose another --out (runs are never overwritten)\n";
  ASSERT_GE(again.err.size(), refusal.size()) << again.err;
  EXPECT_EQ(again.err.substr(again.err.size() - refusal.size()), refusal);
  // Without --out, runs/<name>, then runs/<name>-2.
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 1", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 1", dir_).exit_code, 0);
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "tiny" / "metrics.csv"));
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "tiny-2" / "metrics.csv"));
}

TEST_F(CliTest, NonFiniteLossStopsWithTheTermAndStep) {
  // exp(o) of a wildly initialised output layer overflows: the metric is inf.
  auto r = RunLumpy("run '" + kTiny + "' --set model.output_init_std=1e4 --out nan", dir_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("step 0: loss term \"efe\" is "), std::string::npos) << r.err;
  auto summary = nlohmann::json::parse(ReadFile(dir_ / "nan" / "summary.json"));
  EXPECT_EQ(summary["status"], "failed");
  EXPECT_EQ(summary["steps"], 0);
}

TEST_F(CliTest, WithoutAnExperimentRunsTheQuickstart) {
  auto r = RunLumpy("run --steps 2 --out q", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto summary = nlohmann::json::parse(ReadFile(dir_ / "q" / "summary.json"));
  EXPECT_EQ(summary["experiment"], "quickstart");
  EXPECT_EQ(summary["steps"], 2);
  // The supernova term on the shipped mock, with its rays' telemetry and
  // where the first ray that stopped on a bad state stopped (nan: none did).
  const std::string metrics = ReadFile(dir_ / "q" / "metrics.csv");
  EXPECT_EQ(metrics.substr(0, metrics.find('\n')),
            "step,loss,efe,sn,sn.ray_steps,sn.ray_rejected,sn.rays_non_finite,"
            "sn.rays_non_lorentzian,sn.rays_singular,sn.unreached,sn.bad_t,sn.bad_x,sn.bad_y,"
            "sn.bad_z,sn.bad_lambda,sn.bad_eig0,sn.bad_eig1,wec,wec.penalty,lr,wall_time_s");
  const std::string row = metrics.substr(metrics.find('\n') + 1);
  EXPECT_NE(row.find(",nan,nan,nan,nan,nan,nan,nan,"), std::string::npos) << row;
}

TEST_F(CliTest, PluginsPathsLoadsAnExtraLibrary) {
  // dup_a alone is a valid plugin library outside the default folder.
  const std::string lib = std::string(LUMPY_TEST_PLUGIN_DIR) + "/dup/lumpy_dup_a.so";
  auto without = RunLumpy("run '" + kTiny + "' --steps 1 --out a " +
                              "--set loss.wec.constraint.plugin=duplicate_handler",
                          dir_);
  EXPECT_EQ(without.exit_code, 2);
  EXPECT_NE(without.err.find("unknown constraint \"duplicate_handler\""), std::string::npos);
  auto with = RunLumpy("run '" + kTiny + "' --steps 1 --out b " +
                           "--set loss.wec.constraint.plugin=duplicate_handler " +
                           "--set 'plugins.paths=[\"" + lib + "\"]'",
                       dir_);
  EXPECT_EQ(with.exit_code, 0) << with.err;
}

TEST_F(CliTest, InterruptFinishesTheStepAndWritesTheSummary) {
  const std::string script =
      "'" + std::string(LUMPY_TEST_BINARY) + "' run '" + kTiny +
      "' --steps 100000 --out i 2>/dev/null & pid=$!; "
      "for n in $(seq 600); do [ -f i/metrics.csv ] && [ $(wc -l < i/metrics.csv) -ge 3 ] && break; "
      "sleep 0.1; done; kill -INT $pid; wait $pid; echo $?";
  FILE* pipe = popen(("cd '" + dir_.string() + "' && LUMPY_PLUGIN_PATH= bash -c \"" +
                      absl::StrReplaceAll(script, {{"\"", "\\\""}, {"$", "\\$"}}) + "\"")
                         .c_str(),
                     "r");
  char buf[64] = {0};
  ASSERT_NE(fgets(buf, sizeof buf, pipe), nullptr);
  pclose(pipe);
  EXPECT_EQ(std::string(buf), "1\n");
  auto summary = nlohmann::json::parse(ReadFile(dir_ / "i" / "summary.json"));
  EXPECT_EQ(summary["status"], "interrupted");
  EXPECT_GE(summary["steps"], 2);
  EXPECT_LT(summary["steps"], 100000);
  EXPECT_TRUE(fs::exists(dir_ / "i" / "model.pt"));
}

TEST_F(CliTest, PluginsListsEveryBuiltInWithParameters) {
  auto r = RunLumpy("plugins", dir_);
  ASSERT_EQ(r.exit_code, 0);
  for (const char* s : {"siren", "flrw", "kasner", "minkowski", "schwarzschild", "efe_residual",
                        "wec", "supernova_chi2", "bao_chi2", "cmb_expansion", "cmb_isotropy",
                        "cmb_homogeneity", "lorentzian", "soft_quadratic", "linear", "augmented_lagrangian",
                        "homoscedastic", "uniform", "spatial_weight_net",
                        "output_init_std", "units per hidden layer", "one of: mixed, covariant",
                        "[constraint: needs a handler]", "[dataset: no domain]", "[objective]",
                        "[runtime]", "[optimizer]", "[checkpoint]", "[stopping]", "[certify]", "[report]"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace lumpy
