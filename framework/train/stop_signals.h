#pragma once
// Stopping a run cleanly: while a StopSignals lives, SIGINT (Ctrl-C), SIGTERM
// (Slurm's warning, kill) and SIGHUP (the terminal went away) ask the loop to
// finish its current step, write the summary and the model, and stop; a
// second signal ends the process at once. The previous handlers come back
// when it is destroyed. They nest (the outermost installs and restores the
// handlers): `lumpy run` holds one from its start to
// its summary (a signal during set-up stops the run before its first step; one
// after the last step is too late to matter), the training loop another, and
// a signal received under the outer one is kept. A hangup ignored when the
// first one is made (nohup) stays ignored.

#include <csignal>

#include "engine_export.h"

namespace lumpy {

class LUMPY_ENGINE_API StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received, or 0.
  int received() const;

 private:
  bool installed_ = false;  // the outermost one: it installed the handlers and restores them
  void (*old_int_)(int) = nullptr;
  void (*old_term_)(int) = nullptr;
  void (*old_hup_)(int) = nullptr;
};

}  // namespace lumpy
