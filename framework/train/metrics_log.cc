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
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

}  // namespace

std::vector<std::string> MetricsLog::Columns(const Components& c,
                                             const std::vector<PhysicalScalarSlot>& physical) {
  std::vector<std::string> columns = {"step", "loss"};
  for (const auto& l : c.losses) {
    columns.push_back(l.spec->name);
    for (const auto& [k, v] : l.term->telemetry()) columns.push_back(l.spec->name + "." + k);
    if (l.handler) {
      columns.push_back(l.spec->name + ".penalty");
      for (const auto& [k, v] : l.handler->telemetry()) columns.push_back(l.spec->name + "." + k);
    }
  }
  for (const auto& d : c.domains) {
    for (const auto& [k, v] : d.weighter->telemetry()) columns.push_back(d.spec->name + "." + k);
  }
  for (const auto& p : physical) columns.push_back(p.column);
  columns.insert(columns.end(), {"lr", "wall_time_s"});
  return columns;
}

absl::StatusOr<MetricsLog::Kept> MetricsLog::PrepareForResume(const fs::path& file, int64_t next_step) const {
  if (auto st = CheckInputFile(file, InputKind::kMetrics, "metrics table"); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(st.message(), "; cannot resume"));
  }
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": missing; cannot resume"));
  Kept kept_rows;
  std::string header, line, kept;
  std::getline(in, header);
  const std::string expected = absl::StrJoin(columns_, ",");
  if (header != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": its columns do not match this experiment's; expected \"", expected,
        "\", found \"", header, "\""));
  }
  const auto fields = static_cast<int64_t>(columns_.size());
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::count(line.begin(), line.end(), ',') + 1 != fields) {
      std::fprintf(stderr, "warning: %s: dropped a row with %lld of its %lld fields (a write that did not finish)\n",
                   file.string().c_str(), static_cast<long long>(std::count(line.begin(), line.end(), ',') + 1),
                   static_cast<long long>(fields));
      continue;
    }
    int64_t step = 0;
    if (!absl::SimpleAtoi(line.substr(0, line.find(',')), &step)) {  // "abc" was read as step 0 and kept
      std::fprintf(stderr, "warning: %s: dropped a row whose step \"%s\" is not a whole number\n",
                   file.string().c_str(), line.substr(0, line.find(',')).c_str());
      continue;
    }
    if (step < next_step) {
      absl::StrAppend(&kept, line, "\n");
      kept_rows.wall_time = std::atof(line.substr(line.rfind(',') + 1).c_str());
      if (step + 1 == next_step) {  // the checkpoint's own row: the summary's "final"
        kept_rows.last_row.clear();
        for (absl::string_view field : absl::StrSplit(line, ',')) {
          kept_rows.last_row.push_back(std::atof(std::string(field).c_str()));
        }
      }
    }
  }
  LUMPY_RETURN_IF_ERROR(WriteAtomically(file, absl::StrCat(header, "\n", kept)));
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
