#include "cli/run_command.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/exit_status.h"
#include "cli/ranks_launcher.h"
#include "cli/run_folder.h"
#include "core/executable.h"
#include "lumpy/build_info.h"
#include "train/stop_signals.h"
#include "train/trainer.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// The quickstart: installed beside the binary, or in the source tree of a build.
fs::path QuickstartPath() {
  fs::path exe(LumpyExecutable().string());
  fs::path installed =
      (exe.parent_path() / ".." / "share" / "lumpy" / "experiments" / "quickstart.toml")
          .lexically_normal();
  if (fs::exists(installed)) return installed;
  return fs::path(LUMPY_SOURCE_DIR) / "experiments" / "quickstart.toml";
}

// runs/<name>, or runs/<name>-2, -3, ... so that no earlier run is overwritten.
fs::path DefaultRunDir(const std::string& name) {
  fs::path base = fs::path("runs") / name;
  if (!fs::exists(base)) return base;
  for (int i = 2;; ++i) {
    fs::path candidate = fs::path("runs") / absl::StrCat(name, "-", i);
    if (!fs::exists(candidate)) return candidate;
  }
}

// Rank 0 of several, or the only process: it speaks for the run.
bool FirstRank() {
  const char* rank = std::getenv("LUMPY_RANK");
  const char* proc = std::getenv("SLURM_PROCID");
  return (rank == nullptr || std::string(rank) == "0") && (proc == nullptr || std::string(proc) == "0");
}

// ", on 2 ranks" where this process is one of several.
std::string RanksNote() {
  const char* world = std::getenv("LUMPY_WORLD_SIZE");
  if (world == nullptr) world = std::getenv("SLURM_NTASKS");
  return world != nullptr && std::atoi(world) > 1 ? absl::StrCat(", on ", world, " ranks") : "";
}

// Under srun with several tasks every task must name the same run folder.
bool SlurmRanks() {
  const char* tasks = std::getenv("SLURM_NTASKS");
  return tasks != nullptr && std::atoi(tasks) > 1 && std::getenv("SLURM_PROCID") != nullptr;
}

// A signal while the ranks' run was being set up: none is started.
int StoppedBeforeStart(int sig) {
  std::cerr << "lumpy: stopped by signal " << sig << " before the ranks were started; nothing was run" << std::endl;
  return 128 + sig;
}

// What `lumpy run` passes on to each of its --ranks processes.
std::vector<std::string> RankArgs(const RunCommandOptions& o, const fs::path& file, const fs::path& run_dir) {
  std::vector<std::string> args = {"run", file.string(), "--out", run_dir.string()};
  for (const auto& s : o.sets) args.insert(args.end(), {"--set", s});
  if (o.steps > 0) args.insert(args.end(), {"--steps", std::to_string(o.steps)});
  if (!o.init.empty()) args.insert(args.end(), {"--init", o.init});
  return args;
}

}  // namespace

int RunTraining(const RunCommandOptions& o) {
  StopSignals signals;  // from the start: a signal while the run is set up stops it cleanly too
  fs::path file = o.experiment.empty() ? QuickstartPath() : fs::path(o.experiment);
  std::vector<std::string> overrides = o.sets;
  if (o.steps > 0) overrides.push_back(absl::StrCat("runtime.steps=", o.steps));
  LoadedExperiment loaded;
  if (int rc = ExitStatus(LoadAndBuild(file, overrides, &loaded))) return rc;
  const Experiment* exp = &*loaded.exp;
  if (o.out.empty() && SlurmRanks()) {
    std::cerr << "lumpy run: under srun with several tasks, give --out: every task must name the same run folder"
              << std::endl;
    return kExitConfig;
  }
  fs::path run_dir = o.out.empty() ? DefaultRunDir(exp->name) : fs::path(o.out);
  if (int rc = ExitStatus(CheckTrainable(*exp, loaded.c))) return rc;
  if (o.ranks > 1) {
    const std::vector<std::string> args = RankArgs(o, file, run_dir);
    if (const int sig = signals.received()) return StoppedBeforeStart(sig);
    return LaunchRanks(o.ranks, run_dir, args);
  }
  if (FirstRank()) {
    std::cerr << "lumpy " << LUMPY_VERSION_STRING << ": " << exp->name << " ("
              << exp->runtime.GetInt("steps") << " steps, " << exp->runtime.GetString("dtype")
              << ", " << torch::get_num_threads() << " threads" << RanksNote() << ") -> " << run_dir.string()
              << std::endl;
  }
  TrainOptions train{run_dir, true};
  train.init = o.init;
  absl::Status st = Train(*exp, loaded.c, train);
  if (st.ok() && FirstRank()) std::cerr << "done: " << (run_dir / "summary.json").string() << std::endl;
  return ExitStatus(st);
}

int RunResume(const ResumeCommandOptions& o) {
  StopSignals signals;  // from the start, as RunTraining
  const fs::path run_dir(o.run_dir);
  const fs::path file = run_dir / "experiment.toml";
  if (!fs::is_regular_file(file)) {
    std::cerr << run_dir.string()
              << ": not a run folder (no experiment.toml); give the folder `lumpy run` wrote"
              << std::endl;
    return kExitConfig;
  }
  std::vector<std::string> overrides;
  if (o.steps > 0) overrides.push_back(absl::StrCat("runtime.steps=", o.steps));
  LoadedExperiment loaded;
  if (int rc = ExitStatus(LoadAndBuild(file, overrides, &loaded))) return rc;
  const Experiment* exp = &*loaded.exp;
  if (o.ranks > 1) {
    std::vector<std::string> args = {"resume", run_dir.string()};
    if (o.steps > 0) args.insert(args.end(), {"--steps", std::to_string(o.steps)});
    if (const int sig = signals.received()) return StoppedBeforeStart(sig);
    return LaunchRanks(o.ranks, run_dir, args);
  }
  if (FirstRank()) {
    std::cerr << "lumpy " << LUMPY_VERSION_STRING << ": resuming " << exp->name << " in "
              << run_dir.string() << " up to step " << exp->runtime.GetInt("steps") << RanksNote() << std::endl;
  }
  absl::Status st = Train(*exp, loaded.c, {run_dir, true, /*resume=*/true});
  if (st.ok() && FirstRank()) std::cerr << "done: " << (run_dir / "summary.json").string() << std::endl;
  return ExitStatus(st);
}

}  // namespace lumpy
