#include "cli/ranks_launcher.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <chrono>
#include <iostream>
#include <thread>

#include "core/executable.h"

#include "absl/strings/str_cat.h"
#include "cli/exit_status.h"

extern char** environ;

namespace lumpy {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_forward{0};
extern "C" void OnLauncherSignal(int sig) { g_forward = sig; }

// The exit status a child's wait status stands for (128 + signal if killed).
int ExitOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitRuntime;
}

// This process's environment less the variables the launcher sets for each rank.
std::vector<std::string> InheritedEnvironment() {
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("LUMPY_RANK=", 0) == 0 || entry.rfind("LUMPY_WORLD_SIZE=", 0) == 0 ||
        entry.rfind("LUMPY_STORE=", 0) == 0 || entry.rfind("LUMPY_LOCAL_RANKS=", 0) == 0) {
      continue;
    }
    env_text.push_back(entry);
  }
  return env_text;
}

// The handlers SIGINT, SIGTERM and SIGHUP had before the launcher's.
struct SavedHandlers {
  struct sigaction old_int{}, old_term{}, old_hup{};
};

// SIGINT, SIGTERM and SIGHUP (unless ignored, as under nohup) are noted in
// g_forward, to be passed on to the ranks; the handlers they had into *saved.
void CatchSignals(SavedHandlers* saved) {
  struct sigaction on{};
  on.sa_handler = OnLauncherSignal;
  sigaction(SIGINT, &on, &saved->old_int);
  sigaction(SIGTERM, &on, &saved->old_term);
  sigaction(SIGHUP, &on, &saved->old_hup);
  if (saved->old_hup.sa_handler == SIG_IGN) sigaction(SIGHUP, &saved->old_hup, nullptr);  // nohup: a hangup stays ignored
  g_forward = 0;
}

void RestoreSignals(const SavedHandlers& saved) {
  sigaction(SIGINT, &saved.old_int, nullptr);
  sigaction(SIGTERM, &saved.old_term, nullptr);
  sigaction(SIGHUP, &saved.old_hup, nullptr);
}

// Starts rank R of RANKS in the process group PGROUP (0: a new one, its
// own); posix_spawn's result, the rank's id in *pid.
int SpawnRank(int64_t r, int64_t ranks, pid_t pgroup, const std::string& exe, const std::vector<std::string>& env_text,
              const fs::path& store, const std::vector<std::string>& args, pid_t* pid) {
  std::vector<std::string> env = env_text;
  env.push_back(absl::StrCat("LUMPY_RANK=", r));
  env.push_back(absl::StrCat("LUMPY_WORLD_SIZE=", ranks));
  env.push_back(absl::StrCat("LUMPY_STORE=", store.string()));
  env.push_back(absl::StrCat("LUMPY_LOCAL_RANKS=", ranks));
  std::vector<char*> envp, argv = {const_cast<char*>(exe.c_str())};
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, pgroup);
  const int rc = posix_spawn(pid, exe.c_str(), nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  return rc;
}

// Starts the ranks, all in rank 0's process group; the ids of those started:
// fewer than RANKS when one could not start (those started are then killed).
std::vector<pid_t> SpawnRanks(int64_t ranks, const std::string& exe, const std::vector<std::string>& env_text,
                              const fs::path& store, const std::vector<std::string>& args) {
  std::vector<pid_t> pids;
  for (int64_t r = 0; r < ranks; ++r) {
    pid_t pid = 0;
    const int rc = SpawnRank(r, ranks, pids.empty() ? 0 : pids.front(), exe, env_text, store, args, &pid);
    if (rc != 0) {
      std::cerr << "lumpy: cannot start rank " << r << ": " << std::strerror(rc) << std::endl;
      for (pid_t p : pids) ::kill(p, SIGKILL);
      break;
    }
    pids.push_back(pid);
  }
  return pids;
}

// The ranks while they run: each one's exit status (-1 while it runs).
struct RankWatch {
  RankWatch(const std::vector<pid_t>& started, int64_t n)
      : pids(started), ranks(n), exit(started.size(), -1), running(started.size()),
        stopping(started.size() < static_cast<size_t>(n)) {}
  const std::vector<pid_t>& pids;
  const int64_t ranks;
  std::vector<int> exit;
  size_t running;
  bool stopping;  // the others are being stopped (or never all started)
  std::chrono::steady_clock::time_point stop_deadline = std::chrono::steady_clock::time_point::max();
  bool forwarded = false;

  // SIG to each rank still running.
  void Signal(int sig) {
    for (size_t j = 0; j < pids.size(); ++j) {
      if (exit[j] < 0) ::kill(pids[j], sig);
    }
  }

  // The child DONE ended with STATUS: a rank that ended badly stops the others
  // (SIGTERM now, SIGKILL after 15 s).
  void Ended(pid_t done, int status) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (pids[i] != done) continue;
      exit[i] = ExitOf(status);
      --running;
      if (exit[i] != kExitOk && !stopping && running > 0) {
        std::cerr << "lumpy: rank " << i << " of " << ranks << " ended with status " << exit[i]
                  << "; stopping the other ranks (the run folder keeps its last checkpoint: lumpy resume)"
                  << std::endl;
        Signal(SIGTERM);
        stopping = true;
        stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
      }
    }
  }
};

// Waits for the ranks, passing a caught signal on to them once; their exit statuses.
std::vector<int> WaitForRanks(const std::vector<pid_t>& pids, int64_t ranks) {
  RankWatch w(pids, ranks);
  while (w.running > 0) {
    if (const int sig = g_forward; sig != 0 && !w.forwarded) {
      w.Signal(sig);
      w.forwarded = true;
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      w.Ended(done, status);
      continue;
    }
    if (std::chrono::steady_clock::now() > w.stop_deadline) {
      w.Signal(SIGKILL);
      w.stop_deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return w.exit;
}

// The launcher's exit status: a failure if not all ranks started, else rank
// 0's, else the first other rank's that failed.
int LaunchStatus(size_t started, int64_t ranks, const std::vector<int>& exit) {
  if (started < static_cast<size_t>(ranks)) return kExitRuntime;
  if (exit[0] != kExitOk) return exit[0];
  for (int e : exit) {
    if (e != kExitOk) return e;
  }
  return kExitOk;
}

}  // namespace

int LaunchRanks(int64_t ranks, const fs::path& run_dir, const std::vector<std::string>& args) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) {
    std::cerr << "cannot create run folder " << run_dir.string() << ": " << ec.message() << std::endl;
    return kExitRuntime;
  }
  const fs::path store = run_dir / absl::StrCat(".c10d_store.local.", ::getpid());
  fs::remove(store, ec);
  const std::string exe = LumpyExecutable().string();
  const std::vector<std::string> env_text = InheritedEnvironment();
  SavedHandlers saved;
  CatchSignals(&saved);
  const std::vector<pid_t> pids = SpawnRanks(ranks, exe, env_text, store, args);
  const std::vector<int> exit = WaitForRanks(pids, ranks);
  RestoreSignals(saved);
  fs::remove(store, ec);
  return LaunchStatus(pids.size(), ranks, exit);
}

}  // namespace lumpy
