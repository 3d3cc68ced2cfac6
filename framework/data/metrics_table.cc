#include "data/metrics_table.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lumpy {

std::vector<double> MetricsTable::Column(const std::string& name) const {
  for (size_t k = 0; k < columns.size(); ++k) {
    if (columns[k] != name) continue;
    std::vector<double> out;
    out.reserve(rows.size());
    for (const auto& row : rows) out.push_back(row[k]);
    return out;
  }
  return {};
}

absl::StatusOr<MetricsTable> ParseMetricsTable(std::string_view text, const std::filesystem::path& file) {
  MetricsTable t;
  bool have_header = false;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!have_header) {
      have_header = true;
      t.header = std::string(line);
      t.columns = absl::StrSplit(line, ',');
      continue;
    }
    std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    if (fields.size() != t.columns.size()) {
      ++t.dropped_short;
      continue;
    }
    int64_t step = 0;
    if (!absl::SimpleAtoi(fields[0], &step)) {
      if (t.dropped_step++ == 0) t.first_bad_step = std::string(fields[0].substr(0, 40));
      continue;
    }
    std::vector<double> row;
    row.reserve(fields.size());
    for (absl::string_view f : fields) row.push_back(std::strtod(std::string(f).c_str(), nullptr));
    t.steps.push_back(step);
    t.rows.push_back(std::move(row));
    t.lines.push_back(line);
  }
  if (!have_header) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": empty (no header line)"));
  return t;
}

}  // namespace lumpy
