#include "data/table.h"

#include "core/input_file.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lumpy/status_macros.h"

namespace lumpy {

absl::StatusOr<TextTable> TextTable::Read(const std::filesystem::path& file, Separator separator,
                                          const std::string& what) {
  LUMPY_RETURN_IF_ERROR(CheckInputFile(file, InputKind::kTable, what));
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": cannot read the ", what));
  TextTable t;
  t.file_ = file.string();
  t.separator_ = separator;
  std::string text;
  int64_t line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    // A UTF-8 byte-order mark, as spreadsheets write one: not part of the header.
    if (line_no == 1 && absl::StartsWith(text, "\xEF\xBB\xBF")) text.erase(0, 3);
    absl::string_view view = absl::StripAsciiWhitespace(text);
    if (view.empty() || view[0] == '#') continue;
    std::vector<std::string> fields;
    if (separator == Separator::kComma) {
      for (absl::string_view f : absl::StrSplit(view, ',')) {
        fields.emplace_back(absl::StripAsciiWhitespace(f));
      }
    } else {
      for (absl::string_view f : absl::StrSplit(view, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        fields.emplace_back(f);
      }
    }
    if (t.header_.empty()) {
      std::unordered_map<std::string_view, size_t> seen;
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(t.file_, ":", line_no, ": field ", i + 1, " of the header has no name"));
        }
        auto [at, fresh] = seen.emplace(fields[i], i);
        if (!fresh) {
          return absl::InvalidArgumentError(absl::StrCat(t.file_, ":", line_no, ": the header names column ",
                                                         fields[i], " twice (fields ", at->second + 1,
                                                         " and ", i + 1, ")"));
        }
      }
      t.header_ = std::move(fields);
      t.header_line_ = line_no;
      continue;
    }
    if (fields.size() != t.header_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(t.file_, ":", line_no, ": expected ",
                                                     t.header_.size(), " fields, got ",
                                                     fields.size()));
    }
    t.fields_.push_back(std::move(fields));
    t.lines_.push_back(line_no);
  }
  return t;
}

absl::StatusOr<std::vector<int>> TextTable::Columns(const std::vector<std::string>& names) const {
  std::vector<int> index;
  std::vector<std::string> missing;
  for (const auto& name : names) {
    int found = -1;
    for (size_t i = 0; i < header_.size(); ++i) {
      if (header_[i] == name) found = static_cast<int>(i);
    }
    if (found < 0) missing.push_back(name);
    index.push_back(found);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file_, ":", header_line_, ": the header needs columns ", absl::StrJoin(names, ", "),
        "; missing: ", absl::StrJoin(missing, ", "), " (header: ",
        absl::StrJoin(header_.begin(), header_.begin() + std::min<size_t>(header_.size(), 12),
                      separator_ == Separator::kComma ? "," : " "),
        header_.size() > 12 ? " ..." : "", ")"));
  }
  return index;
}

std::string TextTable::Where(size_t row, int column) const {
  return absl::StrCat(file_, ":", lines_[row], ":", column + 1, ": column ", header_[column]);
}

absl::StatusOr<double> TextTable::Number(size_t row, int column) const {
  const std::string& f = fields_[row][column];
  char* end = nullptr;
  const double v = std::strtod(f.c_str(), &end);
  if (f.empty() || end != f.c_str() + f.size()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(row, column), ": not a number: \"", f, "\""));
  }
  if (f.find_first_of("xX") != std::string::npos) {  // strtod reads C's hexadecimal floats too
    return absl::InvalidArgumentError(absl::StrCat(Where(row, column), ": not a decimal number: \"", f, "\""));
  }
  if (!std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat(Where(row, column), ": not finite: ", f));
  }
  return v;
}

}  // namespace lumpy
