// The readers of a run or sweep folder's own files, which a user may hand
// over from anywhere (a shared scratch folder, a colleague's tarball): the
// input is up to three parts split at lines "----":
//   1. a sweep.json (cli/sweep_file.h): a sweep or a message naming the file;
//      a sweep read has variant names that are one path component, a job id
//      of digits, seeds >= 1, and writes back to JSON that reads the same;
//   2. a run's summary.json: the ablation table's cells and status are read
//      from any JSON without a crash or an exception;
//   3. a metrics.csv (data/metrics_table.h): every kept row has the header's
//      width, and the kept rows under the header read back to themselves.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/sweep_file.h"
#include "core/name.h"
#include "data/metrics_table.h"
#include "fuzz_util.h"

namespace lumpy::fuzz {

namespace {

void SweepPart(std::string_view text) {
  const std::filesystem::path file = "/sweeps/x/sweep.json";
  auto sweep = ParseSweep(text, file);
  if (!sweep.ok()) {
    if (sweep.status().message().find(file.string()) == std::string_view::npos) std::abort();
    return;
  }
  if (sweep->seeds < 1) std::abort();
  if (sweep->job_id.find_first_not_of("0123456789") != std::string::npos) std::abort();
  for (const auto& v : sweep->variants) {
    if (!IsOneName(v.name) || v.seed < 0) std::abort();
  }
  const std::string again = SweepToJson(*sweep).dump();
  auto reread = ParseSweep(again, file);
  if (!reread.ok() || SweepToJson(*reread).dump() != again) std::abort();
}

void SummaryPart(std::string_view text) {
  const nlohmann::json summary = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  std::map<std::string, std::string> cell;
  SummaryCells(summary, SummaryTermNames(summary), SummaryHandlerColumns(summary), &cell);
  (void)SummaryString(summary, "status");
  (void)SummaryString(summary, "error");
}

void MetricsPart(std::string_view text) {
  const std::filesystem::path file = "/runs/x/metrics.csv";
  auto table = ParseMetricsTable(text, file);
  if (!table.ok()) {
    if (table.status().message().find(file.string()) == std::string_view::npos) std::abort();
    return;
  }
  if (table->rows.size() != table->steps.size() || table->rows.size() != table->lines.size()) std::abort();
  std::string kept = absl::StrCat(table->header, "\n");
  for (size_t i = 0; i < table->rows.size(); ++i) {
    if (table->rows[i].size() != table->columns.size()) std::abort();
    absl::StrAppend(&kept, table->lines[i], "\n");
  }
  auto again = ParseMetricsTable(kept, file);
  if (!again.ok() || again->rows.size() != table->rows.size() || again->dropped_short + again->dropped_step != 0 ||
      again->steps != table->steps) {
    std::abort();
  }
}

}  // namespace

int RunFilesInput(const uint8_t* data, size_t size) {
  const auto parts = SplitParts(data, size);
  SweepPart(parts[0]);
  if (parts.size() > 1) SummaryPart(parts[1]);
  if (parts.size() > 2) MetricsPart(parts[2]);
  return 0;
}

}  // namespace lumpy::fuzz

#ifdef LUMPY_FUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lumpy::fuzz::RunFilesInput(data, size);
}
#endif
