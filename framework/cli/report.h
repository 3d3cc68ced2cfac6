#pragma once
// `lumpy report RUN_DIR`: the tables and figures of a finished (or stopped)
// run in RUN_DIR/report/. The CSV tables are computed here from the run's
// metric (probe columns along the observer's world line and on three planes
// today, the curricula's weights, the Hubble diagram of every supernova
// term); scripts/report_figures.py draws them, with metrics.csv's training
// curves, and writes report.md.

#include <string>

#include "engine_export.h"

namespace lumpy {

struct ReportOptions {
  std::string run_dir;
  std::string checkpoint = "final";  // final (model.pt), latest, best
  int grid = 81;                     // points per side of each plane
  int worldline = 251;               // points along t in [-4, 1]
  bool figures = true;               // run scripts/report_figures.py
};

// Exit status as the CLI's: 2 for a bad run folder or options, 1 if a table
// could not be computed or written, 0.
LUMPY_ENGINE_API int RunReport(const ReportOptions& options);

}  // namespace lumpy
