#pragma once
// `lumpy probe`: the metric (and a checkpoint's parameters) of an experiment
// at the points of a CSV file, written as a table (probe.h's ProbeToCsv).
// Exit status as the CLI's (exit_status.h).

#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct ProbeCommandOptions {
  std::string experiment;
  std::string checkpoint;  // a run folder, its model.pt or a checkpoint; empty: the experiment's own
  std::string points;      // CSV naming t,x,y,z
  std::string out;         // the table to write
  std::vector<std::string> sets;
};
LUMPY_ENGINE_API int RunProbe(const ProbeCommandOptions& options);

}  // namespace lumpy
