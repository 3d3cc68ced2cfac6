#pragma once
// Durable file writes: a reader sees the old file or the new one, never half
// of one; and the fault points the crash tests use.

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine_export.h"

namespace lumpy {

// Writes the archive to PATH.tmp, flushes it to disk and renames it over
// PATH: a reader sees the old file or the new one, never half of one.
LUMPY_ENGINE_API absl::Status SaveArchiveAtomically(torch::serialize::OutputArchive& archive,
                                                    const std::filesystem::path& path,
                                                    int64_t step);

// Writes `text` to PATH.tmp, flushes it to disk and renames it over PATH,
// so a crash never leaves a half-written file (summaries, tables, experiment
// copies).
//
// These writers never throw: a failure (a full disk, a read-only folder) is
// an Unavailable error "cannot write PATH: ... (the OS's reason)", the
// temporary file is removed and PATH keeps its previous content.
// Copies FROM over TO the same way.
LUMPY_ENGINE_API absl::Status CopyAtomically(const std::filesystem::path& from,
                                             const std::filesystem::path& to);
LUMPY_ENGINE_API absl::Status WriteAtomically(const std::filesystem::path& path,
                                              const std::string& text);
// Files lumpy keeps appending to (metrics.csv): opened without following a
// symbolic link (run folders live in shared scratch space: a link planted
// there must never make lumpy write elsewhere), kCreate only if it does not
// exist yet (O_EXCL), kAppend only as the regular file it is. Returns the
// file descriptor, or InvalidArgument naming the link or the stranger's
// file, Unavailable for the OS's other refusals. The atomic writers above
// replace their target by rename(2), which replaces a link itself, and
// write through a temporary opened the same way.
enum class OpenMode { kCreate, kAppend };
LUMPY_ENGINE_API absl::StatusOr<int> OpenOwnFile(const std::filesystem::path& path, OpenMode mode);
// Writes all of `bytes` to fd (write(2), retried); Unavailable with the OS's reason.
LUMPY_ENGINE_API absl::Status WriteAll(int fd, const std::string& bytes);

// Fault injection for the crash tests; inert unless LUMPY_FAULT is set:
//   kill-after-step:N      SIGKILL once step N is done (its metrics row written)
//   kill-in-checkpoint:N   SIGKILL half-way through writing the checkpoint
//                          taken after step N (before the rename)
LUMPY_ENGINE_API void FaultPoint(const char* what, int64_t step);

}  // namespace lumpy
