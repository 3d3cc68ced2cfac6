#include "train/metrics_log.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/atomic_file.h"
#include "core/input_file.h"
#include "data/metrics_table.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

}  // namespace

std::vector<std::string> MetricsLog::Columns(const Components& c, const std::vector<PhysicalScalarSlot>& physical,
                                             ColumnOwners* owners) {
  ColumnOwners local;
  ColumnOwners& own = owners != nullptr ? *owners : local;
  std::vector<std::string> columns = {"step", "loss"};
  for (const auto& l : c.losses) {
    columns.push_back(l.spec->name);
    auto& term = own.terms[l.spec->name];
    for (const auto& [k, v] : l.term->telemetry()) term.push_back(l.spec->name + "." + k);
    columns.insert(columns.end(), term.begin(), term.end());
    if (l.handler) {
      auto& handler = own.handlers[l.spec->name];
      handler.push_back(l.spec->name + ".penalty");
      for (const auto& [k, v] : l.handler->telemetry()) handler.push_back(l.spec->name + "." + k);
      columns.insert(columns.end(), handler.begin(), handler.end());
    }
  }
  for (const auto& d : c.domains) {
    auto& curriculum = own.curricula[d.spec->name];
    for (const auto& [k, v] : d.weighter->telemetry()) curriculum.push_back(d.spec->name + "." + k);
    columns.insert(columns.end(), curriculum.begin(), curriculum.end());
  }
  for (const auto& p : physical) columns.push_back(p.column);
  columns.insert(columns.end(), {"lr", "wall_time_s"});
  return columns;
}

absl::StatusOr<MetricsLog::Kept> MetricsLog::PrepareForResume(const fs::path& file, int64_t next_step,
                                                             int64_t log_every, bool continuing) const {
  auto read = ReadInputFile(file, InputKind::kMetrics, "metrics table");
  if (!read.ok()) return absl::InvalidArgumentError(absl::StrCat(read.status().message(), "; cannot resume"));
  const std::string& text = *read;
  auto table = ParseMetricsTable(text, file);
  if (!table.ok()) return absl::InvalidArgumentError(absl::StrCat(table.status().message(), "; cannot resume"));
  const std::string expected = absl::StrJoin(columns_, ",");
  if (table->header != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": its columns do not match this experiment's; expected \"", expected,
        "\", found \"", table->header.substr(0, 2000), "\""));
  }
  if (table->dropped_short > 0) {
    std::fprintf(stderr, "warning: %s: dropped %lld row(s) without all %zu fields (a write that did not finish)\n",
                 file.string().c_str(), static_cast<long long>(table->dropped_short), columns_.size());
  }
  if (table->dropped_step > 0) {
    std::fprintf(stderr, "warning: %s: dropped a row whose step \"%s\" is not a whole number%s\n",
                 file.string().c_str(), table->first_bad_step.c_str(),
                 table->dropped_step > 1 ? absl::StrCat(" (and ", table->dropped_step - 1, " more)").c_str() : "");
  }
  Kept kept_rows;
  std::string kept;
  for (size_t i = 0; i < table->rows.size(); ++i) {
    const int64_t step = table->steps[i];
    if (step >= next_step) continue;
    kept_rows.wall_time = table->rows[i].back();
    if (step + 1 == next_step) {
      kept_rows.last_row = table->rows[i];  // the checkpoint's own row: the summary's "final"
      // The last row of a shorter run (--steps raised on resume) is off the
      // telemetry grid: an unbroken run never wrote it, so neither does this.
      if (continuing && log_every > 0 && step % log_every != 0) continue;
    }
    absl::StrAppend(&kept, table->lines[i], "\n");
  }
  LUMPY_RETURN_IF_ERROR(WriteAtomically(file, absl::StrCat(table->header, "\n", kept)));
  return kept_rows;
}

absl::Status MetricsLog::Open(const fs::path& file, bool resume) {
  file_ = file;
  LUMPY_ASSIGN_OR_RETURN(fd_, OpenOwnFile(file, resume ? OpenMode::kAppend : OpenMode::kCreate));
  if (resume) return absl::OkStatus();
  return Write({});
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

// One row (the header for an empty one), written whole with one write(2).
absl::Status MetricsLog::Write(const std::vector<double>& row) {
  std::string line;
  if (row.empty()) {
    line = absl::StrJoin(columns_, ",");
  } else {
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, i ? "," : "", i == 0 ? std::to_string(static_cast<int64_t>(row[0])) : Num(row[i]));
    }
  }
  line += "\n";
  if (auto st = WriteAll(fd_, line); !st.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot write ", file_.string(), " (", st.message(),
                                               "); rows after the last checkpoint are dropped on resume"));
  }
  return absl::OkStatus();
}

}  // namespace lumpy
