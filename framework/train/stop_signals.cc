#include "train/stop_signals.h"

#include <atomic>

namespace lumpy {
namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void OnStopSignal(int sig) {
  g_stop_signal = sig;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);
}

}  // namespace

StopSignals::StopSignals() {
  g_stop_signal = 0;
  old_int_ = std::signal(SIGINT, OnStopSignal);
  old_term_ = std::signal(SIGTERM, OnStopSignal);
  old_hup_ = std::signal(SIGHUP, OnStopSignal);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
  std::signal(SIGHUP, old_hup_);
}

int StopSignals::received() const { return g_stop_signal; }

}  // namespace lumpy
