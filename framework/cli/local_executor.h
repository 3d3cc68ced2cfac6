#pragma once
// The local executor of `lumpy ablate`: every variant a `lumpy run` process
// on this machine, --jobs at a time, each in its own process group with its
// output in OUT/<variant>.log. A signal to ablate is passed on once to every
// running run (each checkpoints and stops); nothing more is started.

#include <string>
#include <vector>

#include "cli/executor.h"

namespace lumpy {

class LocalExecutor final : public Executor {
 public:
  // jobs: runs at a time; out: --out as given (named in messages).
  LocalExecutor(int jobs, std::string out);

  std::string name() const override { return "local"; }
  std::optional<int> RunThreads() const override;
  absl::Status Prepare(Sweep* sweep) override;
  SweepOutcome Run(const Sweep& sweep) override;
  std::vector<TaskState> Collect(const Sweep& sweep) const override;

 private:
  int jobs_;
  std::string out_;
};

}  // namespace lumpy
