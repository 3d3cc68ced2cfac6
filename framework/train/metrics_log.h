#pragma once
// metrics.csv: one row per logged step (step, loss, every term and its
// telemetry, every handler's penalty and telemetry, every curriculum's
// telemetry, the physical scalars, the learning rate, the wall time), each
// row flushed as it is written. On resume the rows of the steps after the
// checkpoint are dropped: the resumed run writes them again.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "config/experiment.h"
#include "engine_export.h"
#include "train/state.h"

namespace lumpy {

class LUMPY_ENGINE_API MetricsLog {
 public:
  // Whose telemetry the columns are: per loss term its own, per term with a
  // handler the handler's (its penalty first), per domain its curriculum's.
  struct ColumnOwners {
    std::map<std::string, std::vector<std::string>> terms, handlers, curricula;
  };
  // The columns of an experiment's table, in order; OWNERS, if given, says
  // whose they are (summary.json's telemetry_columns).
  static std::vector<std::string> Columns(const Components& components,
                                          const std::vector<PhysicalScalarSlot>& physical,
                                          ColumnOwners* owners = nullptr);

  explicit MetricsLog(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  const std::vector<std::string>& columns() const { return columns_; }

  // What a resumed run takes over from the rows it keeps.
  struct Kept {
    std::vector<double> last_row;  // the checkpoint's own row (step next_step - 1), if logged
    double wall_time = 0;          // of the last row kept
  };
  // Checks the file's header against the columns and keeps the rows of the
  // steps before next_step (a row cut short by a crash is dropped with a
  // warning), as an unbroken run with rows every LOG_EVERY steps would have
  // them: when the run CONTINUES past next_step, the checkpoint's own row is
  // dropped if it is off that grid (the last row of a run resumed with a
  // larger --steps); rewrites the file atomically. InvalidArgument if it
  // cannot be resumed.
  absl::StatusOr<Kept> PrepareForResume(const std::filesystem::path& file, int64_t next_step, int64_t log_every,
                                        bool continuing) const;

  // Opens the file for appending (resume) or anew with its header; never
  // through a symbolic link, and anew only where no file is (OpenOwnFile).
  absl::Status Open(const std::filesystem::path& file, bool resume);
  // One row: the step as an integer, every other value with 17 digits.
  absl::Status Write(const std::vector<double>& row);
  ~MetricsLog();

 private:
  std::vector<std::string> columns_;
  std::filesystem::path file_;
  int fd_ = -1;
};

}  // namespace lumpy
