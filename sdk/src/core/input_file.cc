#include "core/input_file.h"

#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lumpy {

namespace fs = std::filesystem;

uint64_t InputLimitBytes(InputKind kind) {
  constexpr uint64_t kMiB = 1ull << 20;
  if (kind == InputKind::kPlugin) return ~uint64_t{0};  // LUMPY_MAX_INPUT_MB bounds data, not code
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
    case InputKind::kRunFile: return 256 * kMiB;
    case InputKind::kPlugin: return ~uint64_t{0};
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

uint32_t Le32(const unsigned char* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
uint16_t Le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// A checkpoint is a zip archive (LibTorch's format) whose entries are stored
// uncompressed, each with the CRC-32 of its bytes in the central directory.
// LibTorch does not check them: one flipped byte in a tensor was trained on.
// Every stored entry's bytes are checked against their CRC; "" when they all
// match, else what is wrong. An archive this cannot read (zip64, another
// compression) is left to LibTorch's own reader.
std::string ZipDamage(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<unsigned char> z((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (z.size() < 22) return "too short to be a checkpoint (not a zip archive)";
  // The end-of-central-directory record: in the last 64 KiB + 22 bytes.
  size_t eocd = std::string::npos;
  for (size_t i = z.size() - 22 + 1; i-- > 0 && z.size() - i <= 65536 + 22;) {
    if (Le32(&z[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) return "not a zip archive (no end of central directory): truncated or overwritten";
  const uint32_t entries = Le16(&z[eocd + 10]), cd_size = Le32(&z[eocd + 12]), cd_offset = Le32(&z[eocd + 16]);
  if (entries == 0xffff || cd_offset == 0xffffffffu) return "";  // zip64: LibTorch reads it
  if (static_cast<uint64_t>(cd_offset) + cd_size > eocd) return "its central directory lies outside the file";
  size_t at = cd_offset;
  for (uint32_t k = 0; k < entries; ++k) {
    if (at + 46 > z.size() || Le32(&z[at]) != 0x02014b50) return "its central directory is damaged";
    const uint16_t method = Le16(&z[at + 10]);
    const uint32_t crc = Le32(&z[at + 16]), size = Le32(&z[at + 20]);
    const uint16_t name_len = Le16(&z[at + 28]), extra_len = Le16(&z[at + 30]), comment_len = Le16(&z[at + 32]);
    const uint32_t local = Le32(&z[at + 42]);
    if (at + 46 + name_len > z.size()) return "its central directory is damaged";
    const std::string name(reinterpret_cast<const char*>(&z[at + 46]), name_len);
    at += 46 + name_len + extra_len + comment_len;
    if (method != 0 || size == 0xffffffffu || local == 0xffffffffu) continue;  // compressed or zip64
    if (static_cast<uint64_t>(local) + 30 > z.size() || Le32(&z[local]) != 0x04034b50) {
      return absl::StrCat("entry ", name, ": its local header is damaged");
    }
    const uint64_t data = static_cast<uint64_t>(local) + 30 + Le16(&z[local + 26]) + Le16(&z[local + 28]);
    if (data + size > z.size()) return absl::StrCat("entry ", name, " runs past the end of the file (truncated)");
    const uint32_t actual = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), &z[data], size));
    if (actual != crc) {
      return absl::StrCat("entry ", name, ": its bytes do not match their CRC-32 (the file was damaged after it was "
                          "written)");
    }
  }
  return "";
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
  if (kind == InputKind::kCheckpoint) {
    if (const std::string damage = ZipDamage(file); !damage.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(file.string(), ": truncated or corrupt ", what, " (", damage,
                                                     "); nothing was loaded from it"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadInputFile(const fs::path& file, InputKind kind, const std::string& what) {
  if (auto st = CheckInputFile(file, kind, what); !st.ok()) return st;
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": cannot read the ", what));
  const uint64_t limit = InputLimitBytes(kind);
  std::string out;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > limit) {
      return absl::InvalidArgumentError(absl::StrCat(file.string(), ": grew past the ", Megabytes(limit),
                                                     " limit for the ", what, " while it was read"));
    }
  }
  return out;
}

}  // namespace lumpy
