#pragma once
// Text tables with a header line: the points files of `lumpy probe` (commas)
// and the supernova catalogues (whitespace). Every error names the file, the
// line and, for a value, the column (1-based field number and name).

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine_export.h"

namespace lumpy {

class LUMPY_ENGINE_API TextTable {
 public:
  enum class Separator { kComma, kWhitespace };

  // Blank lines and lines starting with '#' are skipped; the first other line
  // is the header; every row must have as many fields as the header.
  static absl::StatusOr<TextTable> Read(const std::filesystem::path& file, Separator separator,
                                        const std::string& what);

  const std::string& file() const { return file_; }
  const std::vector<std::string>& header() const { return header_; }
  size_t rows() const { return fields_.size(); }
  int64_t line(size_t row) const { return lines_[row]; }

  // Index of the named columns; one error listing all that are missing.
  absl::StatusOr<std::vector<int>> Columns(const std::vector<std::string>& names) const;
  // A finite number, or an error "file:line:col: column NAME: ...".
  absl::StatusOr<double> Number(size_t row, int column) const;
  const std::string& Field(size_t row, int column) const { return fields_[row][column]; }
  // "file:line:col: column NAME" for messages about a value.
  std::string Where(size_t row, int column) const;

 private:
  std::string file_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> fields_;
  std::vector<int64_t> lines_;
  int64_t header_line_ = 0;
  Separator separator_ = Separator::kComma;
};

}  // namespace lumpy
