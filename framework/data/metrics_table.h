#pragma once
// The one reader of a run's metrics.csv (train/metrics_log.h writes it): the
// header's column names, then one row per logged step, the step a whole
// number and every other field a number. What a crash or a hand edit leaves
// is dropped and counted, never read as a value: a row with the wrong number
// of fields (a write that did not finish) or whose step is not a whole
// number ("abc" was once kept as step 0). Used by `lumpy resume` (which
// keeps the rows before its checkpoint) and by the claims' measurements.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine_export.h"

namespace lumpy {

struct LUMPY_ENGINE_API MetricsTable {
  std::string header;                      // the header line as written
  std::vector<std::string> columns;        // its names, split at commas
  std::vector<int64_t> steps;              // per kept row
  std::vector<std::vector<double>> rows;   // per kept row, every field (the step too), strtod's value
  std::vector<absl::string_view> lines;    // per kept row, its text (views into the parsed text)
  int64_t dropped_short = 0;               // rows with another number of fields than the header
  int64_t dropped_step = 0;                // rows whose step is not a whole number
  std::string first_bad_step;              // the first such step, for the warning

  // The values of the (first) column of that name over the kept rows; empty
  // if there is no such column.
  std::vector<double> Column(const std::string& name) const;
};

// Parses the text of a metrics.csv (blank lines skipped). InvalidArgument
// naming FILE when there is no header line. The table's `lines` view TEXT:
// keep it alive.
LUMPY_ENGINE_API absl::StatusOr<MetricsTable> ParseMetricsTable(std::string_view text,
                                                                 const std::filesystem::path& file);

}  // namespace lumpy
