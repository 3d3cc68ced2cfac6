#pragma once
// Where the runs of a `lumpy ablate` sweep go: an Executor starts them, waits
// for them (or not) and tells each task's state, for the sweep's table and
// for --collect. One is chosen from --executor (or, for --collect, from
// sweep.json) by MakeExecutor: "local" (processes here, local_executor.h) or
// "slurm" (one job array, slurm_executor.h).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/ablate.h"
#include "cli/sweep_file.h"

namespace lumpy {

// What became of one task: pending, running, interrupted (stopped by a
// signal, resumable), or done with an exit code.
struct TaskState {
  std::string state = "done";
  int exit_code = -1;
};

// What running a sweep came to.
struct SweepOutcome {
  // Each task's state; none where the executor did not wait for the tasks
  // (slurm --no-wait): then there is no table yet (--collect builds it).
  std::optional<std::vector<TaskState>> states;
  int stopped_by = 0;  // the signal that stopped the sweep (passed on to its runs), or 0
};

class Executor {
 public:
  virtual ~Executor() = default;

  // As --executor and sweep.json name it.
  virtual std::string name() const = 0;

  // runtime.threads of every run that does not set its own (the cores
  // shared between the runs at a time), or none where a run gets its threads
  // elsewhere (a Slurm task: from its allocation).
  virtual std::optional<int> RunThreads() const = 0;

  // Before sweep.json is written: the sweep folder made ready (local:
  // created; Slurm: checked, its script written and the job array submitted,
  // sweep->job_id set). An error: nothing runs (InvalidArgument: a
  // configuration error; any other: a failure at run time).
  virtual absl::Status Prepare(Sweep* sweep) = 0;

  // Runs the sweep, or waits for its tasks; progress on standard error.
  virtual SweepOutcome Run(const Sweep& sweep) = 0;

  // Each task's state as the sweep folder (and the queue) tell it (--collect).
  virtual std::vector<TaskState> Collect(const Sweep& sweep) const = 0;
};

// The executors' names, as --executor takes them.
std::vector<std::string> ExecutorNames();

// The executor `name` with the options it reads (local: --jobs, --out;
// slurm: the slurm options); InvalidArgument naming the known ones for an
// unknown name.
absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const std::string& name, const AblateOptions& options);

}  // namespace lumpy
