#include "train/stop_signals.h"

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
  if (g_depth++ == 0) g_stop_signal = 0;  // a signal received under an outer one is kept
  old_int_ = std::signal(SIGINT, OnStopSignal);
  old_term_ = std::signal(SIGTERM, OnStopSignal);
  old_hup_ = std::signal(SIGHUP, OnStopSignal);
  // nohup: a hangup stays ignored, as the user asked.
  if (old_hup_ == SIG_IGN) {
    g_hangup_ignored = true;
    std::signal(SIGHUP, SIG_IGN);
  }
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
  std::signal(SIGHUP, old_hup_);
  --g_depth;
}

int StopSignals::received() const { return g_stop_signal; }

}  // namespace lumpy
