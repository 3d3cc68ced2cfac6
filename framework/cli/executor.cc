#include "cli/executor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/local_executor.h"
#include "cli/slurm_executor.h"

namespace lumpy {

std::vector<std::string> ExecutorNames() { return {"local", "slurm"}; }

absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const std::string& name, const AblateOptions& options) {
  if (name == "local") return std::make_unique<LocalExecutor>(options.jobs, options.out);
  if (name == "slurm") return std::make_unique<SlurmExecutor>(options.slurm);
  return absl::InvalidArgumentError(absl::StrCat("--executor ", name, ": unknown executor; known: ",
                                                 absl::StrJoin(ExecutorNames(), ", ")));
}

}  // namespace lumpy
