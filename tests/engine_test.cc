// The training engine end to end, through the command line: exact resume
// after SIGKILL (also mid-checkpoint), refused resumes that change nothing,
// stopping rules, the held-out certificate and the timing split.

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <thread>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;
using testing::Shell;
using testing::WaitFor;
using EngineTest = testing::TempDirTest;

const std::string kEngine = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/engine.toml";

// Runs lumpy with LUMPY_FAULT set (the engine's fault-injection hook).
testing::CliResult RunWithFault(const std::string& fault, const std::string& args, const fs::path& cwd) {
  setenv("LUMPY_FAULT", fault.c_str(), 1);
  auto r = RunLumpy(args, cwd);
  unsetenv("LUMPY_FAULT");
  return r;
}

// metrics.csv rows by step, without the wall-time column (the only one that
// may differ between two runs of the same trajectory).
std::map<int64_t, std::string> Rows(const fs::path& csv) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
  std::map<int64_t, std::string> out;
  EXPECT_NE(lines.at(0).rfind(",wall_time_s"), std::string::npos);
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    out[std::stoll(l.substr(0, l.find(',')))] = l.substr(0, l.rfind(','));
  }
  return out;
}

nlohmann::json Summary(const fs::path& run) { return nlohmann::json::parse(ReadFile(run / "summary.json")); }

TEST_F(EngineTest, KilledRunsResumeOnTheSameTrajectory) {
  auto a = RunLumpy("run '" + kEngine + "' --out a", dir_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto reference = Rows(dir_ / "a" / "metrics.csv");
  ASSERT_EQ(reference.size(), 200u);
  // The run exercised the state that must survive: mu raised, lr halved,
  // lambda and log sigma moving.
  auto summary = Summary(dir_ / "a");
  EXPECT_GT(summary["final"]["wec.mu"].get<double>(), 1.0);
  EXPECT_NE(summary["final"]["isotropy.log_sigma"].get<double>(), 0.0);

  // SIGKILL after step 120: the latest checkpoint is the one after step 99.
  auto b = RunWithFault("kill-after-step:120", "run '" + kEngine + "' --out b", dir_);
  EXPECT_TRUE(b.exit_code == -1 || b.exit_code == 128 + SIGKILL) << "expected death by SIGKILL: " << b.exit_code << " " << b.err;
  EXPECT_FALSE(fs::exists(dir_ / "b" / "summary.json"));
  EXPECT_EQ(Rows(dir_ / "b" / "metrics.csv").size(), 121u);
  auto resumed = RunLumpy("resume b", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(Rows(dir_ / "b" / "metrics.csv"), reference);
  EXPECT_EQ(Summary(dir_ / "b")["resumed_at_step"].get<int64_t>(), 100);

  // SIGKILL half-way through writing the checkpoint after step 149: the
  // half-written file is the temporary one; latest.pt is still step 99's.
  auto c = RunWithFault("kill-in-checkpoint:149", "run '" + kEngine + "' --out c", dir_);
  EXPECT_TRUE(c.exit_code == -1 || c.exit_code == 128 + SIGKILL) << c.exit_code << " " << c.err;
  EXPECT_TRUE(fs::exists(dir_ / "c" / "checkpoints" / "latest.pt.tmp"));
  auto resumed_c = RunLumpy("resume c", dir_);
  ASSERT_EQ(resumed_c.exit_code, 0) << resumed_c.err;
  EXPECT_EQ(Rows(dir_ / "c" / "metrics.csv"), reference);
  EXPECT_EQ(Summary(dir_ / "c")["resumed_at_step"].get<int64_t>(), 100);

  // A finished run continues with a larger total, and the extension equals
  // a run of that length from the start.
  auto more = RunLumpy("resume a", dir_);
  EXPECT_EQ(more.exit_code, 2);
  EXPECT_NE(more.err.find("the checkpoint is at step 200 and runtime.steps is 200; give a larger "
                          "total with --steps"),
            std::string::npos)
      << more.err;
  ASSERT_EQ(RunLumpy("resume a --steps 230", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps 230 --out d", dir_).exit_code, 0);
  EXPECT_EQ(Rows(dir_ / "a" / "metrics.csv"), Rows(dir_ / "d" / "metrics.csv"));

  // The same with rows every 7 steps: the shorter run's last row (step 29,
  // off the grid) is not kept; it once was, one row more than an unbroken run.
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps 30 --set telemetry.every=7 --out e", dir_).exit_code, 0);
  ASSERT_EQ(Rows(dir_ / "e" / "metrics.csv").count(29), 1u);
  ASSERT_EQ(RunLumpy("resume e --steps 50", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps 50 --set telemetry.every=7 --out f", dir_).exit_code, 0);
  EXPECT_EQ(Rows(dir_ / "e" / "metrics.csv"), Rows(dir_ / "f" / "metrics.csv"));
  EXPECT_EQ(Summary(dir_ / "e")["final"], Summary(dir_ / "f")["final"]);
}

// A slow run never loses more than checkpoint.every_minutes: with interval
// checkpoints off and the wall-time one due at every step, a run killed
// after step 120 resumes from step 121 and ends on the uninterrupted
// trajectory (the same rows; best.pt is still the intervals' alone).
TEST_F(EngineTest, WallTimeCheckpointsBoundWhatAKilledRunLoses) {
  const std::string flags = " --set checkpoint.every=0 --set checkpoint.every_minutes=1e-9";
  auto a = RunLumpy("run '" + kEngine + "'" + flags + " --out a", dir_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = RunWithFault("kill-after-step:120", "run '" + kEngine + "'" + flags + " --out b", dir_);
  EXPECT_TRUE(b.exit_code == -1 || b.exit_code == 128 + SIGKILL) << b.exit_code << " " << b.err;
  EXPECT_FALSE(fs::exists(dir_ / "b" / "checkpoints" / "best.pt"));
  auto resumed = RunLumpy("resume b", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(Summary(dir_ / "b")["resumed_at_step"].get<int64_t>(), 121);
  EXPECT_EQ(Rows(dir_ / "b" / "metrics.csv"), Rows(dir_ / "a" / "metrics.csv"));
  // Off (0), and a run of the default 10 minutes, write none between the
  // intervals: killed after step 120 with intervals of 100, it resumes at 100.
  auto c = RunWithFault("kill-after-step:120", "run '" + kEngine + "' --set checkpoint.every_minutes=0 --out c", dir_);
  ASSERT_EQ(RunLumpy("resume c", dir_).exit_code, 0);
  EXPECT_EQ(Summary(dir_ / "c")["resumed_at_step"].get<int64_t>(), 100);
}

// --init: a fresh run starts from another run's weights and nothing else.
// With a learning rate of 1e-300 its model stays that run's (the probe gives
// the same metric to the last digit), while the handlers start fresh (the
// WEC's multiplier at 0 in the first row) and the summary says where from.
// A model of another shape or kind is refused, naming what differs.
TEST_F(EngineTest, InitTakesAnotherRunsWeightsAndNothingElse) {
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps 30 --out a", dir_).exit_code, 0);
  auto b = RunLumpy("run '" + kEngine + "' --init a --steps 1 --set optimizer.lr=1e-300 "
                    "--set optimizer.peak_lr=1e-300 --out b", dir_);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto summary = Summary(dir_ / "b");
  EXPECT_EQ(summary["init"]["from"].get<std::string>(), "a");
  const auto a_rows = Rows(dir_ / "a" / "metrics.csv");
  const auto b_rows = Rows(dir_ / "b" / "metrics.csv");
  EXPECT_NE(a_rows.at(0), b_rows.at(0));  // another model on the same first points
  std::vector<std::string> header = absl::StrSplit(ReadFile(dir_ / "b" / "metrics.csv").substr(0, ReadFile(dir_ / "b" / "metrics.csv").find('\n')), ',');
  std::vector<std::string> first = absl::StrSplit(b_rows.at(0), ',');
  const auto lambda = std::find(header.begin(), header.end(), "wec.lambda") - header.begin();
  EXPECT_EQ(std::stod(first.at(lambda)), 0.0);
  {
    std::ofstream points(dir_ / "p.csv");
    points << "t,x,y,z\n0.5,0.1,-0.2,0.3\n-2,0.7,0.4,-0.9\n";
  }
  auto pa = RunLumpy("probe '" + kEngine + "' --checkpoint a --points p.csv --out pa.csv", dir_);
  auto pb = RunLumpy("probe '" + kEngine + "' --checkpoint b --points p.csv --out pb.csv", dir_);
  ASSERT_EQ(pa.exit_code, 0) << pa.err;
  ASSERT_EQ(pb.exit_code, 0) << pb.err;
  EXPECT_EQ(ReadFile(dir_ / "pa.csv"), ReadFile(dir_ / "pb.csv"));

  auto shape = RunLumpy("run '" + kEngine + "' --init a --set model.hidden=8 --steps 1 --out c", dir_);
  EXPECT_EQ(shape.exit_code, 2);
  EXPECT_NE(shape.err.find("--init: "), std::string::npos) << shape.err;
  EXPECT_NE(shape.err.find("does not fit this experiment's model (siren)"), std::string::npos) << shape.err;
  EXPECT_NE(shape.err.find("state \"hidden0.weight\" is [12, 4] in the checkpoint, [8, 4] in the plugin"), std::string::npos)
      << shape.err;
  auto missing = RunLumpy("run '" + kEngine + "' --init nowhere --steps 1 --out d", dir_);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nowhere: no such checkpoint"), std::string::npos) << missing.err;
}

// The penalty-coupled decay: the engine sees the augmented Lagrangian raise
// mu through the penalty itself (its curvature at a unit violation) and
// halves the learning rate; without penalty_decay the two runs agree up to
// that step and the rate there is twice as large. (The same run's rows are
// those of the build before, where the handler reported the raise itself.)
TEST_F(EngineTest, PenaltyDecayHalvesTheRateWhenMuIsRaised) {
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --out decay", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --set optimizer.penalty_decay=false --out plain", dir_).exit_code, 0);
  auto table = [&](const fs::path& csv) {
    std::vector<std::string> lines = absl::StrSplit(ReadFile(csv), '\n', absl::SkipEmpty());
    std::vector<std::string> header = absl::StrSplit(lines.at(0), ',');
    const auto col = [&](const std::string& name) { return std::find(header.begin(), header.end(), name) - header.begin(); };
    std::vector<std::pair<double, double>> mu_lr;
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<std::string> f = absl::StrSplit(lines[i], ',');
      mu_lr.emplace_back(std::stod(f.at(col("wec.mu"))), std::stod(f.at(col("lr"))));
    }
    return mu_lr;
  };
  const auto decay = table(dir_ / "decay" / "metrics.csv"), plain = table(dir_ / "plain" / "metrics.csv");
  ASSERT_EQ(decay.size(), 200u);
  size_t raised = 1;
  while (raised < decay.size() && decay[raised].first == decay[raised - 1].first) ++raised;
  ASSERT_LT(raised, decay.size()) << "mu was never raised in 200 steps";
  // Row `raised` is the first with the raised mu (a row reports the state
  // after its step's update, and the rate the next step uses): halved there.
  for (size_t i = 0; i < raised; ++i) EXPECT_EQ(decay[i].second, plain[i].second) << "row " << i;
  EXPECT_DOUBLE_EQ(decay[raised].second, 0.5 * plain[raised].second);
}

// A domain of ray_points draws from the previous step's rays: after a kill,
// the resumed run draws from the same rays (they are in the checkpoint) and
// follows the same trajectory. The first step has no rays yet (every point
// at the observer, one violation); later steps have the ray's spread.
TEST_F(EngineTest, RayPointsResumeOnTheSameTrajectory) {
  const std::string guard = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/ray_guard.toml";
  const std::string lcdm70 = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/flrw_probe.toml";
  ASSERT_EQ(RunLumpy("mock-sn '" + lcdm70 + "' --out mock.dat --n 25 --no-noise --z-max 1.5", dir_).exit_code, 0);
  auto a = RunLumpy("run '" + guard + "' --out a", dir_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto reference = Rows(dir_ / "a" / "metrics.csv");
  ASSERT_EQ(reference.size(), 40u);
  auto b = RunWithFault("kill-after-step:25", "run '" + guard + "' --out b", dir_);
  EXPECT_TRUE(b.exit_code == -1 || b.exit_code == 128 + SIGKILL) << b.exit_code << " " << b.err;
  auto resumed = RunLumpy("resume b", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(Rows(dir_ / "b" / "metrics.csv"), reference);
  EXPECT_EQ(Summary(dir_ / "b")["resumed_at_step"].get<int64_t>(), 20);
  // The constraint was active and its points moved off the observer.
  auto final = Summary(dir_ / "a")["final"];
  EXPECT_GT(final["lorentzian.lambda"].get<double>(), 0.0);
}

// An experiment that extends another and adds a domain and a loss term whose
// names sort before the base's: the resolved experiment.toml a resume reads
// lists them sorted, so the run must use that order from the start, or the
// resume is refused (its metrics columns in another order) or draws its
// domains in another order. Found on a stage run: 02_weighing adds
// `lorentzian` after 01's `sn`.
TEST_F(EngineTest, ExtendedExperimentsResumeOnTheSameTrajectory) {
  {
    std::ofstream child(dir_ / "child.toml");
    child << "extends = \"" << kEngine << "\"\n"
          << "[runtime]\nsteps = 60\n[checkpoint]\nevery = 20\n"
          << "[domains.aaa.strata.all]\ncount = 4\nt = [-1.0, 1.0]\n"
          << "[loss.a_wec]\nplugin = \"wec\"\ndomain = \"aaa\"\nconstraint = { plugin = \"soft_quadratic\" }\n";
  }
  auto a = RunLumpy("run child.toml --out a", dir_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto reference = Rows(dir_ / "a" / "metrics.csv");
  ASSERT_EQ(reference.size(), 60u);
  const std::string header = ReadFile(dir_ / "a" / "metrics.csv").substr(0, 20);
  EXPECT_EQ(header.rfind("step,loss,a_wec,", 0), 0u) << header;
  auto b = RunWithFault("kill-after-step:30", "run child.toml --out b", dir_);
  EXPECT_TRUE(b.exit_code == -1 || b.exit_code == 128 + SIGKILL) << b.exit_code << " " << b.err;
  auto resumed = RunLumpy("resume b", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(Rows(dir_ / "b" / "metrics.csv"), reference);
}


// An allocation failure is an "out of memory" that says where and what needs
// less, and the run stops (exit 1), not a raw allocator message: ten million
// points in a step under a 6 GB address-space limit.
TEST_F(EngineTest, OutOfMemorySaysWhereAndWhatNeedsLess) {
  {
    std::ofstream f(dir_ / "oom.toml");
    f << "extends = \"" << LUMPY_TEST_SOURCE_DIR << "/data/tiny.toml\"\n[domains.bulk.strata.late]\ncount = 10000000\n";
  }
  ASSERT_EQ(Shell("ulimit -v 6000000; \"$LUMPY\" run oom.toml --out r >/dev/null 2>err; echo $? >rc", dir_), 0);
  EXPECT_EQ(ReadFile(dir_ / "rc"), "1\n");
  const std::string err = ReadFile(dir_ / "err");
  EXPECT_NE(err.find("step 0: loss term \"efe\" (efe_residual) ran out of memory (DefaultCPUAllocator: can't "
                     "allocate memory: you tried to allocate "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("fewer points per step (domains.*.strata.*.count)"), std::string::npos) << err;
}

// One process owns a run folder. Two runs into one folder started together:
// one trains, the other is refused (exit 2) and writes nothing; the rows are
// the trainer's, each step once. While a run goes on, a resume of its folder
// and another run into it are refused at once, naming the holder's pid.
TEST_F(EngineTest, OneProcessOwnsARunFolder) {
  const std::string run = "\"$LUMPY\" run " + kEngine + " --steps 300 --out same";
  ASSERT_EQ(Shell("(" + run + " >/dev/null 2>e1; echo $? >rc1) & (" + run + " >/dev/null 2>e2; echo $? >rc2) & wait", dir_), 0);
  std::vector<std::string> rc = {ReadFile(dir_ / "rc1"), ReadFile(dir_ / "rc2")};
  std::sort(rc.begin(), rc.end());
  EXPECT_EQ(rc, (std::vector<std::string>{"0\n", "2\n"})) << ReadFile(dir_ / "e1") << ReadFile(dir_ / "e2");
  const std::string refused = ReadFile(dir_ / (rc[0] == ReadFile(dir_ / "rc1") ? "e2" : "e1"));
  EXPECT_TRUE(refused.find("in use by another lumpy process (pid ") != std::string::npos ||
              refused.find("already holds a run") != std::string::npos)
      << refused;
  const auto rows = Rows(dir_ / "same" / "metrics.csv");
  EXPECT_EQ(rows.size(), 300u);
  const std::string csv = ReadFile(dir_ / "same" / "metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 301);  // the header and each step once

  // A long run in the background; while it goes, others are refused.
  ASSERT_EQ(Shell("\"$LUMPY\" run " + kEngine + " --steps 100000 --out long >/dev/null 2>long.err & echo $! >long.pid", dir_), 0);
  ASSERT_TRUE(WaitFor([&] {
    const std::string csv = ReadFile(dir_ / "long" / "metrics.csv");
    return std::count(csv.begin(), csv.end(), '\n') >= 3;
  }, 60));
  std::string pid = ReadFile(dir_ / "long.pid");
  pid.erase(pid.find_last_not_of("\n") + 1);
  for (const std::string& args : {std::string("resume long"), "run '" + kEngine + "' --out long"}) {
    auto r = RunLumpy(args, dir_);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find("long: in use by another lumpy process (pid " + pid + ")"), std::string::npos) << r.err;
  }
  ::kill(std::stoi(pid), SIGINT);  // it stops cleanly, its summary says so
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ / "long" / "summary.json"); }, 60)) << ReadFile(dir_ / "long.err");
  EXPECT_EQ(Summary(dir_ / "long")["status"].get<std::string>(), "interrupted");
  // Once it has ended, the folder can be resumed.
  auto resumed = RunLumpy("resume long --steps 3", dir_);
  EXPECT_EQ(resumed.err.find("in use"), std::string::npos) << resumed.err;
}

// SIGHUP (the terminal went away) and SIGTERM stop a run as Ctrl-C does:
// the step finishes, the summary says "interrupted", and it can be resumed.
TEST_F(EngineTest, HangupAndTerminateStopARunCleanly) {
  for (int sig : {SIGHUP, SIGTERM}) {
    const std::string name = "sig" + std::to_string(sig);
    ASSERT_EQ(Shell("\"$LUMPY\" run " + kEngine + " --steps 100000 --out " + name + " >/dev/null 2>" + name +
                        ".err & echo $! >" + name + ".pid",
                    dir_),
              0);
    ASSERT_TRUE(WaitFor([&] {
      const std::string csv = ReadFile(dir_ / name / "metrics.csv");
      return std::count(csv.begin(), csv.end(), '\n') >= 3;
    }, 60));
    std::string pid = ReadFile(dir_ / (name + ".pid"));
    ::kill(std::stoi(pid), sig);
    ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ / name / "summary.json"); }, 60)) << ReadFile(dir_ / (name + ".err"));
    EXPECT_EQ(Summary(dir_ / name)["status"].get<std::string>(), "interrupted") << name;
    EXPECT_NE(Summary(dir_ / name)["error"].get<std::string>().find("interrupted by signal " + std::to_string(sig)),
              std::string::npos);
  }
}

// Under nohup (SIGHUP ignored when lumpy starts) a hangup is ignored, as
// the user asked; SIGTERM still stops the run cleanly.
TEST_F(EngineTest, AHangupIgnoredByNohupStaysIgnored) {
  ASSERT_EQ(Shell("trap \"\" HUP; \"$LUMPY\" run " + kEngine + " --steps 100000 --out nohup >/dev/null 2>nohup.err & echo $! >nohup.pid",
                  dir_),
            0);
  auto rows = [&] {
    const std::string csv = ReadFile(dir_ / "nohup" / "metrics.csv");
    return std::count(csv.begin(), csv.end(), '\n');
  };
  ASSERT_TRUE(WaitFor([&] { return rows() >= 3; }, 60)) << ReadFile(dir_ / "nohup.err");
  const pid_t pid = std::stoi(ReadFile(dir_ / "nohup.pid"));
  ::kill(pid, SIGHUP);
  const auto before = rows();
  EXPECT_TRUE(WaitFor([&] { return rows() >= before + 5; }, 60)) << "the run stopped on an ignored hangup";
  EXPECT_FALSE(fs::exists(dir_ / "nohup" / "summary.json"));
  ::kill(pid, SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ / "nohup" / "summary.json"); }, 60)) << ReadFile(dir_ / "nohup.err");
  EXPECT_EQ(Summary(dir_ / "nohup")["status"].get<std::string>(), "interrupted");
}

// A full disk (a 256 KiB tmpfs; mounting it needs root): the run stops
// cleanly (exit 1) naming the file and the OS's reason, leaves no temporary
// file, and its latest checkpoint stays loadable: with room again (the
// tmpfs remounted larger) `lumpy resume` finishes it on the trajectory of an
// uninterrupted run.
TEST_F(EngineTest, AFullDiskStopsTheRunCleanlyAndLosesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const fs::path small = dir_ / "small";
  fs::create_directories(small);
  ASSERT_EQ(std::system(("mount -t tmpfs -o size=256k lumpy_full_disk '" + small.string() + "'").c_str()), 0);
  struct Unmount {
    fs::path at;
    ~Unmount() { (void)std::system(("umount '" + at.string() + "'").c_str()); }
  } unmount{small};
  auto full = RunLumpy("run '" + kEngine + "' --steps 1000 --out small/run", dir_);
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_NE(full.err.find("cannot write small/run/"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("(No space left on device)"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("lumpy resume continues from it once the write can succeed"), std::string::npos) << full.err;
  EXPECT_EQ(full.err.find("terminate called"), std::string::npos) << full.err;
  for (const auto& e : fs::recursive_directory_iterator(small)) {
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  ASSERT_EQ(std::system(("mount -o remount,size=64m '" + small.string() + "'").c_str()), 0);
  auto resumed = RunLumpy("resume small/run", dir_);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps 1000 --out whole", dir_).exit_code, 0);
  EXPECT_EQ(Rows(small / "run" / "metrics.csv"), Rows(dir_ / "whole" / "metrics.csv"));
}

// metrics.csv is written by position: a plugin whose telemetry names change
// after the first step (tests/plugins/shifty_handler.cc) stops the run with
// an error naming it and the column, not a file of shifted columns.
TEST_F(EngineTest, APluginWhoseTelemetryChangesStopsTheRun) {
  std::ofstream(dir_ / "shifty.toml") << "extends = \"" << LUMPY_TEST_SOURCE_DIR << "/data/tiny.toml\"\n"
                                      << "[plugins]\npaths = [\"" << LUMPY_TEST_PLUGIN_DIR << "/shifty\"]\n"
                                      << "[loss.wec]\nplugin = \"wec\"\ndomain = \"bulk\"\n"
                                      << "[loss.wec.constraint]\nplugin = \"shifty_handler\"\n";
  auto r = RunLumpy("run shifty.toml --out run", dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("the handler of loss term \"wec\" (shifty_handler) broke its contract: its telemetry "
                       "changed after the first step (metrics.csv column "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("is \"wec.calls\", it now reports \"wec.renamed\""), std::string::npos) << r.err;
  EXPECT_EQ(Summary(dir_ / "run")["status"].get<std::string>(), "failed");
}

// A run killed after its last step's checkpoint and model.pt but before its
// summary is finished by `lumpy resume` without asking for more steps (it
// used to say "give a larger total with --steps"): the same rows, the same
// final values, the run's own number of steps; then it is complete.
TEST_F(EngineTest, ResumeFinishesARunKilledBeforeItsSummary) {
  const std::string tiny = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/tiny.toml";
  ASSERT_EQ(RunLumpy("run '" + tiny + "' --out a", dir_).exit_code, 0);
  auto killed = RunWithFault("kill-before-summary:5", "run '" + tiny + "' --out b", dir_);
  ASSERT_TRUE(killed.exit_code == -1 || killed.exit_code == 128 + SIGKILL) << killed.exit_code << " " << killed.err;
  ASSERT_FALSE(fs::exists(dir_ / "b" / "summary.json"));
  auto finished = RunLumpy("resume b", dir_);
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(Rows(dir_ / "b" / "metrics.csv"), Rows(dir_ / "a" / "metrics.csv"));
  auto a = Summary(dir_ / "a"), b = Summary(dir_ / "b");
  EXPECT_EQ(b["status"], "completed");
  EXPECT_EQ(b["steps"].get<int64_t>(), 6);
  EXPECT_EQ(b["final"], a["final"]);
  EXPECT_EQ(b["timing"]["steps"].get<int64_t>(), 0);  // nothing was trained again
  EXPECT_TRUE(fs::exists(dir_ / "b" / "model.pt"));
  auto again = RunLumpy("resume b", dir_);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("give a larger total with --steps"), std::string::npos) << again.err;
}

TEST_F(EngineTest, RefusedResumesSayWhyAndChangeNothing) {
  auto killed = RunWithFault("kill-after-step:60", "run '" + kEngine + "' --out run", dir_);
  ASSERT_TRUE(killed.exit_code == -1 || killed.exit_code == 128 + SIGKILL) << killed.exit_code << " " << killed.err;
  const fs::path run = dir_ / "run";
  const std::string metrics = ReadFile(run / "metrics.csv");
  const fs::path latest = run / "checkpoints" / "latest.pt";
  ASSERT_TRUE(fs::exists(latest));
  auto expect_refused = [&](const std::string& what) {
    auto r = RunLumpy("resume run", dir_);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_EQ(ReadFile(run / "metrics.csv"), metrics);
    EXPECT_FALSE(fs::exists(run / "summary.json"));
  };

  // From an incompatible experiment: the first differing line is named.
  fs::copy_file(run / "experiment.toml", dir_ / "saved.toml");
  {
    std::string toml = ReadFile(run / "experiment.toml");
    toml.replace(toml.find("hidden = 12"), 11, "hidden = 10");
    std::ofstream(run / "experiment.toml") << toml;
  }
  expect_refused("from an incompatible experiment: the checkpoint's experiment has \"hidden = 12\" "
                 "where this one has \"hidden = 10\"");
  fs::copy_file(dir_ / "saved.toml", run / "experiment.toml", fs::copy_options::overwrite_existing);

  // Truncated.
  fs::copy_file(latest, dir_ / "saved.pt");
  fs::resize_file(latest, fs::file_size(latest) / 3);
  expect_refused("latest.pt: truncated or corrupt checkpoint");
  // Missing.
  fs::remove(latest);
  expect_refused("latest.pt: no checkpoint to resume from");
  // Not a run folder.
  auto nowhere = RunLumpy("resume nowhere", dir_);
  EXPECT_EQ(nowhere.exit_code, 2);
  EXPECT_NE(nowhere.err.find("nowhere: not a run folder"), std::string::npos) << nowhere.err;
  // Restored, it resumes.
  fs::copy_file(dir_ / "saved.pt", latest);
  EXPECT_EQ(RunLumpy("resume run", dir_).exit_code, 0);
}

TEST_F(EngineTest, StoppingRulesAndTheSummary) {
  auto target = RunLumpy("run '" + kEngine + "' --set stopping.target_loss=1e9 --out t", dir_);
  ASSERT_EQ(target.exit_code, 0) << target.err;
  auto t = Summary(dir_ / "t");
  EXPECT_EQ(t["status"], "stopped");
  EXPECT_EQ(t["steps"].get<int64_t>(), 1);
  EXPECT_NE(t["stop_reason"].get<std::string>().find("reached the target loss 1000000000 at step 0"),
            std::string::npos);

  auto patience = RunLumpy("run '" + kEngine + "' --set stopping.patience=3 --out p", dir_);
  ASSERT_EQ(patience.exit_code, 0) << patience.err;
  auto p = Summary(dir_ / "p");
  EXPECT_EQ(p["status"], "stopped");
  const int64_t steps = p["steps"].get<int64_t>();
  EXPECT_LT(steps, 200);
  EXPECT_EQ(steps - 1 - p["best"]["step"].get<int64_t>(), 3);
  EXPECT_NE(p["stop_reason"].get<std::string>().find("no new best loss in 3 steps"), std::string::npos);

  // The single best step's model: best_step.pt is bitwise the model whose
  // loss was the best (best_step_model = before_update: the state a run of
  // exactly that many steps ends in) or the one after that step's update
  // (after_update, the reference's), compared through probe's full-precision
  // output.
  ASSERT_TRUE(p.contains("best_step_checkpoint")) << p.dump(2);
  const int64_t best = p["best"]["step"].get<int64_t>();
  EXPECT_EQ(p["best_step_checkpoint"]["step"].get<int64_t>(), best);
  EXPECT_EQ(p["best_step_checkpoint"]["loss"].get<double>(), p["best"]["loss"].get<double>());
  {
    std::ofstream(dir_ / "pts.csv") << "t,x,y,z\n0.5,0.1,0.2,0.3\n-3,0.9,-0.4,0.2\n1,1,1,1\n";
  }
  auto probe_of = [&](const std::string& checkpoint) {
    auto r = RunLumpy("probe '" + kEngine + "' --checkpoint " + checkpoint + " --points pts.csv --out o.csv", dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ReadFile(dir_ / "o.csv");
  };
  if (best > 0) {
    ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps " + std::to_string(best) + " --out upto", dir_).exit_code, 0);
    EXPECT_EQ(probe_of("p/checkpoints/best_step.pt"), probe_of("upto/model.pt"));
  }
  auto after = RunLumpy("run '" + kEngine + "' --set stopping.patience=3 --set 'stopping.best_step_model=\"after_update\"' --out pa", dir_);
  ASSERT_EQ(after.exit_code, 0) << after.err;
  ASSERT_EQ(Summary(dir_ / "pa")["best"]["step"].get<int64_t>(), best);
  ASSERT_EQ(RunLumpy("run '" + kEngine + "' --steps " + std::to_string(best + 1) + " --out through", dir_).exit_code, 0);
  EXPECT_EQ(probe_of("pa/checkpoints/best_step.pt"), probe_of("through/model.pt"));
  EXPECT_NE(probe_of("pa/checkpoints/best_step.pt"), probe_of("p/checkpoints/best_step.pt"));

  // The full run: held-out checks per constrained domain, the best
  // checkpoint, the timing split, and checkpoints that probe can read.
  auto full = RunLumpy("run '" + kEngine + "' --out f", dir_);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  auto f = Summary(dir_ / "f");
  EXPECT_EQ(f["status"], "completed");
  EXPECT_EQ(f["held_out"]["bulk"]["points"].get<int64_t>(), 4 * 4 * 4 * 4);
  EXPECT_TRUE(f["held_out"]["bulk"]["constraints"].contains("wec"));
  // The WEC's violation is max(0, -R): its largest on the grid is the
  // grid's lowest R, negated, or 0 where R >= 0 everywhere.
  EXPECT_EQ(f["held_out"]["bulk"]["constraints"]["wec"]["max"].get<double>(),
            std::max(0.0, -f["held_out"]["bulk"]["ricci_min"].get<double>()));
  EXPECT_TRUE(f["held_out"]["cmb"]["constraints"].contains("isotropy"));
  EXPECT_TRUE(f["held_out"]["bulk"]["ricci_min"].is_number());
  EXPECT_TRUE(f["best_checkpoint"]["held_out"].contains("bulk"));
  EXPECT_TRUE(fs::exists(dir_ / "f" / "checkpoints" / "best.pt"));
  EXPECT_GT(f["timing"]["loss_s"].get<double>(), 0);
  EXPECT_GT(f["timing"]["backward_s"].get<double>(), 0);
  EXPECT_GE(f["timing"]["engine_s"].get<double>(), 0);
  EXPECT_GT(f["timing"]["checkpoint_s"].get<double>(), 0);
  EXPECT_EQ(f["held_out_step"].get<int64_t>(), 199);
  {
    std::ofstream(dir_ / "in.csv") << "t,x,y,z\n0.5,0.1,0.2,0.3\n";
  }
  auto probe = RunLumpy("probe '" + kEngine + "' --checkpoint f/checkpoints/best.pt --points in.csv --out o.csv", dir_);
  EXPECT_EQ(probe.exit_code, 0) << probe.err;
}

// A non-finite loss stops the run, names the term and step, keeps the last
// good checkpoint and writes no model.pt from the broken state.
TEST_F(EngineTest, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  auto r = RunLumpy("run '" + kEngine + "' --set 'optimizer.schedule=\"constant\"' --set optimizer.lr=20 "
                    "--set checkpoint.every=1 --out run", dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto s = Summary(dir_ / "run");
  EXPECT_EQ(s["status"], "failed");
  const std::string error = s["error"];
  // It fails after its first step (lr 20 blows the metric up), so a good
  // checkpoint exists.
  EXPECT_TRUE(error.rfind("step 0: ", 0) == std::string::npos && error.rfind("step ", 0) == 0) << error;
  EXPECT_NE(error.find("checkpoints/latest.pt keeps the last good state"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir_ / "run" / "model.pt"));
  {
    std::ofstream(dir_ / "in.csv") << "t,x,y,z\n0.5,0.1,0.2,0.3\n";
  }
  auto probe = RunLumpy("probe '" + kEngine + "' --checkpoint run/checkpoints/latest.pt --points in.csv --out o.csv", dir_);
  EXPECT_EQ(probe.exit_code, 0) << probe.err;
}

TEST_F(EngineTest, HandlerAndScheduleParametersAreRangeChecked) {
  struct Case {
    std::string set, message;
  };
  for (const Case& c : std::vector<Case>{
           {"loss.wec.constraint.tau=1.5", "loss.wec.constraint.tau: must be in (0, 1], got 1.5"},
           {"loss.wec.constraint.mu_max=0.5", "loss.wec.constraint.mu_max: must be >= mu0 (1), got 0.5"},
           {"loss.wec.constraint.check_every=0", "loss.wec.constraint.check_every: must be >= 1, got 0"},
           {"loss.isotropy.constraint.base=\"cubic\"", "loss.isotropy.constraint.base: must be one of"},
           {"domains.bulk.curriculum.hidden=0", "domains.bulk.curriculum.hidden: must be in [1, 1024], got 0"},
           {"optimizer.peak_lr=1e-5", "optimizer.peak_lr: must be >= optimizer.lr (0.0002) for warm_restarts, got 1e-05"},
           {"stopping.patience=-1", "stopping.patience: must be >= 1, got -1"},
           {"stopping.patience=0", "stopping.patience: must be >= 1, got 0"},
           {"loss.wec.handler_on=\"median\"", "loss.wec.handler_on: must be one of points, mean"},
       }) {
    auto r = RunLumpy("check '" + kEngine + "' --set '" + c.set + "'", dir_);
    EXPECT_EQ(r.exit_code, 2) << c.set;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.set << ": " << r.err;
  }
}

}  // namespace
}  // namespace lumpy
