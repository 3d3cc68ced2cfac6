#pragma once
// The table of a `lumpy ablate` sweep: OUT/ablation.csv and OUT/ablation.md
// (one row per variant and seed: its state, the final loss terms and the
// handlers' state, the held-out certificate, H_mean and shear today, the
// error of a failed run; then each variant's mean ± standard deviation over
// its seeds) and, if matplotlib is there, the figure OUT/ablation.png.

#include <vector>

#include "absl/status/statusor.h"
#include "cli/executor.h"
#include "cli/sweep_file.h"

namespace lumpy {

// Writes the table of the tasks in `states` (one per variant) with a line
// naming it on standard error; returns how many finished runs failed. An
// error (the table could not be written) is a failure at run time.
absl::StatusOr<int> WriteAblationTable(const Sweep& sweep, const std::vector<TaskState>& states);

}  // namespace lumpy
