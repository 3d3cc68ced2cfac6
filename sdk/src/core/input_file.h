#pragma once
// Every file lumpy reads passes one check before it is opened: it exists, it
// is a regular file (a directory, FIFO, socket or device is refused as such:
// /dev/zero or a pipe would be read for ever), and it is not larger than the
// limit for its kind, so a wrong path fails at once with the file, the kind,
// the limit and the way out named.

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine_export.h"

namespace lumpy {

// The documented limits (README, "Limits"): LUMPY_MAX_INPUT_MB raises or
// lowers all of them at once.
enum class InputKind {
  kExperiment,  // TOML: 16 MiB
  kTable,       // CSV points files, supernova catalogues, BAO tables: 512 MiB
  kCovariance,  // covariance matrices: 2 GiB
  kCheckpoint,  // checkpoints: 4 GiB
  kMetrics,     // a run's metrics.csv: 4 GiB
  kRunFile,     // a run or sweep folder's own small files (summary.json, sweep.json, logs): 256 MiB
  kPlugin,      // a plugin library: code, not input; its kind is checked, never its size
};

LUMPY_ENGINE_API uint64_t InputLimitBytes(InputKind kind);

// OK, or InvalidArgument "FILE: <why>" naming the file's role `what`
// ("supernova catalogue"): no such file, not a regular file, over the limit;
// for a checkpoint (a zip archive), also one whose stored bytes do not match
// the CRC-32 the archive records for them (LibTorch's reader does not check).
LUMPY_ENGINE_API absl::Status CheckInputFile(const std::filesystem::path& file, InputKind kind,
                                             const std::string& what);

// The whole of a file that passed CheckInputFile, never more than its
// kind's limit (a file that grows while it is read is cut there): the one
// way lumpy reads the files of run and sweep folders, so a FIFO or a link to
// /dev/zero planted there is refused instead of read for ever.
LUMPY_ENGINE_API absl::StatusOr<std::string> ReadInputFile(const std::filesystem::path& file, InputKind kind,
                                                          const std::string& what);

}  // namespace lumpy
