#include "core/input_file.h"

#include <cstdlib>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace lumpy {

namespace fs = std::filesystem;

uint64_t InputLimitBytes(InputKind kind) {
  constexpr uint64_t kMiB = 1ull << 20;
  if (const char* env = std::getenv("LUMPY_MAX_INPUT_MB")) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (end != env && *end == '\0' && mb > 0 && mb < (1ull << 40)) return mb * kMiB;
  }
  switch (kind) {
    case InputKind::kExperiment: return 16 * kMiB;
    case InputKind::kTable: return 512 * kMiB;
    case InputKind::kCovariance: return 2048 * kMiB;
    case InputKind::kCheckpoint:
    case InputKind::kMetrics: return 4096 * kMiB;
  }
  return 0;
}

namespace {
const char* TypeName(fs::file_type type) {
  switch (type) {
    case fs::file_type::directory: return "a directory";
    case fs::file_type::fifo: return "a FIFO (named pipe)";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    default: return "not a regular file";
  }
}

std::string Megabytes(uint64_t bytes) {
  return absl::StrCat(bytes / (1ull << 20), " MiB");
}
}  // namespace

absl::Status CheckInputFile(const fs::path& file, InputKind kind, const std::string& what) {
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (ec || status.type() == fs::file_type::not_found) {
    if (status.type() == fs::file_type::not_found || ec == std::errc::no_such_file_or_directory) {
      return absl::InvalidArgumentError(absl::StrCat(file.string(), ": no such ", what));
    }
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": cannot read the ", what, ": ", ec.message()));
  }
  if (status.type() != fs::file_type::regular) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": is ", TypeName(status.type()), "; the ", what, " must be a regular file"));
  }
  const uint64_t size = fs::file_size(file, ec);
  const uint64_t limit = InputLimitBytes(kind);
  if (!ec && size > limit) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", Megabytes(size), ", over the ",
                                                   Megabytes(limit), " limit for the ", what,
                                                   " (LUMPY_MAX_INPUT_MB raises it)"));
  }
  return absl::OkStatus();
}

}  // namespace lumpy
