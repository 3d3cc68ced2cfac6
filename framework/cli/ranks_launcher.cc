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
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("LUMPY_RANK=", 0) == 0 || entry.rfind("LUMPY_WORLD_SIZE=", 0) == 0 ||
        entry.rfind("LUMPY_STORE=", 0) == 0 || entry.rfind("LUMPY_LOCAL_RANKS=", 0) == 0) {
      continue;
    }
    env_text.push_back(entry);
  }
  struct sigaction on{}, old_int{}, old_term{}, old_hup{};
  on.sa_handler = OnLauncherSignal;
  sigaction(SIGINT, &on, &old_int);
  sigaction(SIGTERM, &on, &old_term);
  sigaction(SIGHUP, &on, &old_hup);
  if (old_hup.sa_handler == SIG_IGN) sigaction(SIGHUP, &old_hup, nullptr);  // nohup: a hangup stays ignored
  g_forward = 0;
  std::vector<pid_t> pids;
  for (int64_t r = 0; r < ranks; ++r) {
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
    posix_spawnattr_setpgroup(&attr, pids.empty() ? 0 : pids.front());
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      std::cerr << "lumpy: cannot start rank " << r << ": " << std::strerror(rc) << std::endl;
      for (pid_t p : pids) ::kill(p, SIGKILL);
      break;
    }
    pids.push_back(pid);
  }
  std::vector<int> exit(pids.size(), -1);
  size_t running = pids.size();
  bool stopping = pids.size() < static_cast<size_t>(ranks);
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  bool forwarded = false;
  while (running > 0) {
    if (const int sig = g_forward; sig != 0 && !forwarded) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (exit[i] < 0) ::kill(pids[i], sig);
      }
      forwarded = true;
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] != done) continue;
        exit[i] = ExitOf(status);
        --running;
        if (exit[i] != kExitOk && !stopping && running > 0) {
          std::cerr << "lumpy: rank " << i << " of " << ranks << " ended with status " << exit[i]
                    << "; stopping the other ranks (the run folder keeps its last checkpoint: lumpy resume)"
                    << std::endl;
          for (size_t j = 0; j < pids.size(); ++j) {
            if (exit[j] < 0) ::kill(pids[j], SIGTERM);
          }
          stopping = true;
          stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        }
      }
      continue;
    }
    if (std::chrono::steady_clock::now() > stop_deadline) {
      for (size_t j = 0; j < pids.size(); ++j) {
        if (exit[j] < 0) ::kill(pids[j], SIGKILL);
      }
      stop_deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  fs::remove(store, ec);
  if (pids.size() < static_cast<size_t>(ranks)) return kExitRuntime;
  if (exit[0] != kExitOk) return exit[0];
  for (int e : exit) {
    if (e != kExitOk) return e;
  }
  return kExitOk;
}

}  // namespace lumpy
