#pragma once
// `lumpy run` and `lumpy resume`: one training of an experiment (by default
// the quickstart) into a run folder, or the continuation of a run folder
// from its latest checkpoint; here, over --ranks processes of this machine
// (ranks_launcher.h), or as one of srun's tasks. Exit status as the CLI's
// (exit_status.h); a signal before the ranks were started: 128 + signal.

#include <cstdint>
#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct RunCommandOptions {
  std::string experiment;         // empty: the quickstart
  std::vector<std::string> sets;  // --set KEY=VALUE
  std::string out;                // empty: runs/<name> (never overwritten)
  int64_t steps = 0;              // 0: the experiment's runtime.steps
  int64_t ranks = 1;              // processes on this machine
  std::string init;               // start from this model's weights
};
LUMPY_ENGINE_API int RunTraining(const RunCommandOptions& options);

// Continues run_dir from checkpoints/latest.pt, with the run's own resolved
// experiment; steps > 0 sets a new total.
struct ResumeCommandOptions {
  std::string run_dir;
  int64_t steps = 0, ranks = 1;
};
LUMPY_ENGINE_API int RunResume(const ResumeCommandOptions& options);

}  // namespace lumpy
