#include "cli/local_executor.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/executable.h"
#include "train/stop_signals.h"

extern char** environ;

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// Runs `lumpy run` for one variant, output to its log; returns the pid.
pid_t Spawn(const fs::path& exe, const std::string& experiment, const SweepVariant& v, const fs::path& dir) {
  std::vector<std::string> args = {exe.string(), "run", experiment};
  for (const auto& o : v.overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  args.push_back("--out");
  args.push_back((dir / v.name).string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = (dir / (v.name + ".log")).string();
  ::unlink(log.c_str());  // ours anew: never written through a planted link
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  // Each run in its own process group: a signal meant for the sweep reaches
  // ablate alone, which passes it on once to every run (RunLocal). Ctrl-C
  // sent to the terminal's group would otherwise reach a run twice, and a
  // second signal ends a run without its checkpoint.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  if (posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), environ) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// What ended run i (its wait status) made of its task: its exit code, and
// where the sweep had passed on signal `forwarded`, whether it stopped on it.
// Returns whether it was interrupted (resumable, not failed).
bool Ended(const Sweep& sweep, size_t i, int status, int forwarded, TaskState* state) {
  state->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // A run that stopped on the signal passed on is resumable, not failed;
  // one killed by it before it had a summary was never really started. Any
  // other end without a summary is a failure.
  const std::string run_status =
      forwarded != 0 ? SummaryString(ReadRunJson(sweep.dir / sweep.variants[i].name / "summary.json"), "status")
                     : "";
  const bool killed_by_it = WIFSIGNALED(status) && WTERMSIG(status) == forwarded;
  const bool interrupted = forwarded != 0 && (run_status == "interrupted" || (run_status.empty() && killed_by_it));
  if (interrupted) state->state = run_status.empty() ? "pending" : "interrupted";
  return interrupted;
}

// Runs the variants here, `jobs` at a time. SIGINT, SIGTERM or SIGHUP sent
// to ablate is passed on once to every running run (each checkpoints and
// stops as `lumpy run` does on it); no other run is started, those left are
// marked pending, and the sweep waits for the running ones before its table.
// A second signal ends ablate at once (the runs already have theirs).
std::vector<TaskState> RunLocal(const Sweep& sweep, int jobs, int* stopped_by) {
  const fs::path exe(LumpyExecutable().string());
  const auto& variants = sweep.variants;
  std::map<pid_t, size_t> running;
  std::vector<TaskState> states(variants.size());
  StopSignals signals;
  int forwarded = 0;
  size_t next = 0, done = 0;
  while (done < variants.size()) {
    const int sig = signals.received();
    if (sig != 0 && forwarded == 0) {
      forwarded = sig;
      for (const auto& [pid, i] : running) ::kill(pid, sig);
      std::cerr << "lumpy ablate: " << strsignal(sig) << ": asked " << running.size()
                << " running run(s) to checkpoint and stop; " << variants.size() - next
                << " not started" << std::endl;
      for (size_t i = next; i < variants.size(); ++i) states[i].state = "pending";
      done += variants.size() - next;
      next = variants.size();
    }
    while (forwarded == 0 && next < variants.size() && static_cast<int>(running.size()) < std::max(1, jobs)) {
      pid_t pid = Spawn(exe, sweep.experiment, variants[next], sweep.dir);
      if (pid < 0) {
        states[next].exit_code = 127;
        ++done;
      } else {
        running[pid] = next;
        std::cerr << "  started " << variants[next].name << std::endl;
      }
      ++next;
    }
    if (running.empty()) continue;
    int status = 0;
    // Polled, so a signal is seen while runs are going (waitpid restarts).
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const bool interrupted = Ended(sweep, it->second, status, forwarded, &states[it->second]);
    const int code = states[it->second].exit_code;
    std::cerr << "  " << (interrupted ? "stopped  " : code == 0 ? "finished " : "FAILED   ") << variants[it->second].name
              << " (" << ++done << "/" << variants.size() << ")" << std::endl;
    running.erase(it);
  }
  *stopped_by = forwarded;
  return states;
}

}  // namespace

LocalExecutor::LocalExecutor(int jobs, std::string out) : jobs_(jobs), out_(std::move(out)) {}

std::optional<int> LocalExecutor::RunThreads() const {
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1, cores / std::max(1, jobs_));
}

absl::Status LocalExecutor::Prepare(Sweep* sweep) {
  std::error_code ec;
  fs::create_directories(sweep->dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(out_, ": cannot create: ", ec.message()));
  return absl::OkStatus();
}

SweepOutcome LocalExecutor::Run(const Sweep& sweep) {
  std::cerr << "lumpy ablate: " << sweep.variants.size() << " run(s), " << jobs_ << " at a time, " << *RunThreads()
            << " thread(s) each unless set -> " << sweep.dir.string() << std::endl;
  SweepOutcome outcome;
  outcome.states = RunLocal(sweep, jobs_, &outcome.stopped_by);
  return outcome;
}

// Stopped by a signal (resumable) or never started (no folder): not
// finished, not failed. A folder without a summary is a run that died.
std::vector<TaskState> LocalExecutor::Collect(const Sweep& sweep) const {
  std::vector<TaskState> states(sweep.variants.size());
  for (size_t i = 0; i < states.size(); ++i) {
    const std::string status =
        SummaryString(ReadRunJson(sweep.dir / sweep.variants[i].name / "summary.json"), "status");
    states[i].exit_code = status == "completed" || status == "stopped" ? 0 : 1;
    if (status == "interrupted") states[i].state = "interrupted";
    // (Spawn always creates the log: a variant with a log was started.)
    const fs::path log = sweep.dir / (sweep.variants[i].name + ".log");
    std::error_code ec;
    const auto log_size = fs::file_size(log, ec);
    const bool started = fs::exists(sweep.dir / sweep.variants[i].name) || (!ec && log_size > 0);
    if (status.empty() && !started) states[i].state = "pending";
  }
  return states;
}

}  // namespace lumpy
