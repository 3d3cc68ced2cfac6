#pragma once
// The Slurm executor of `lumpy ablate`: one job array (OUT/sweep.sbatch), one
// task per variant and seed, submitted with sbatch. A task resumes its run if
// a checkpoint is there, and on Slurm's warning before its time limit it
// checkpoints and requeues itself; its exit status goes to OUT/<variant>.exit.
// States come from squeue and those files. No program is ever run through a
// shell.

#include <string>
#include <vector>

#include "cli/executor.h"

namespace lumpy {

class SlurmExecutor final : public Executor {
 public:
  explicit SlurmExecutor(AblateOptions::Slurm options);

  std::string name() const override { return "slurm"; }
  // A task's threads follow its allocation (--cpus-per-task).
  std::optional<int> RunThreads() const override { return std::nullopt; }
  absl::Status Prepare(Sweep* sweep) override;
  // Polls the queue until every task is done (with a progress line), or,
  // with --no-wait, prints the job id and returns at once.
  SweepOutcome Run(const Sweep& sweep) override;
  std::vector<TaskState> Collect(const Sweep& sweep) const override;

 private:
  AblateOptions::Slurm options_;
};

}  // namespace lumpy
