#pragma once
// Stopping a run cleanly: while a StopSignals lives, SIGINT (Ctrl-C), SIGTERM
// (Slurm's warning, kill) and SIGHUP (the terminal went away) ask the loop to
// finish its current step, write the summary and the model, and stop; a
// second signal ends the process at once. The previous handlers come back
// when it is destroyed.

#include <csignal>

namespace lumpy {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received, or 0.
  int received() const;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
  void (*old_hup_)(int);
};

}  // namespace lumpy
