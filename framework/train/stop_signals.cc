#include "train/stop_signals.h"

#include <signal.h>

#include <atomic>

namespace lumpy {
namespace {

std::atomic<int> g_stop_signal{0};
std::atomic<int> g_depth{0};
std::atomic<bool> g_hangup_ignored{false};

extern "C" void OnStopSignal(int sig) {
  g_stop_signal = sig;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!g_hangup_ignored) std::signal(SIGHUP, SIG_DFL);
}

}  // namespace

StopSignals::StopSignals() {
  // Only the outermost one installs the handlers: an inner one must not turn
  // them back on after a first signal (the second must still end the process).
  installed_ = g_depth++ == 0;
  if (!installed_) return;
  g_stop_signal = 0;
  // nohup: a hangup ignored when lumpy starts stays ignored, as the user asked.
  struct sigaction current {};
  sigaction(SIGHUP, nullptr, &current);
  g_hangup_ignored = current.sa_handler == SIG_IGN;
  old_int_ = std::signal(SIGINT, OnStopSignal);
  old_term_ = std::signal(SIGTERM, OnStopSignal);
  old_hup_ = g_hangup_ignored ? SIG_IGN : std::signal(SIGHUP, OnStopSignal);
}

StopSignals::~StopSignals() {
  --g_depth;
  if (!installed_) return;
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
  if (!g_hangup_ignored) std::signal(SIGHUP, old_hup_);
}

int StopSignals::received() const { return g_stop_signal; }

}  // namespace lumpy
