#pragma once
// What probe, distances and mock-sn share: the experiment's metric, on the
// runtime's dtype and device, with a checkpoint's parameters if one is given
// (run_folder.h's LoadAndBuild, then LoadMetric).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/run_folder.h"
#include "lumpy/status_macros.h"

namespace lumpy {

inline absl::Status LoadModel(const std::string& experiment, const std::vector<std::string>& sets,
                              const std::string& checkpoint, LoadedExperiment* out) {
  LUMPY_RETURN_IF_ERROR(LoadAndBuild(experiment, sets, out));
  return LoadMetric(checkpoint, out);
}

}  // namespace lumpy
