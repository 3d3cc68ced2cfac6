#pragma once
// Durable file writes: a reader sees the old file or the new one, never half
// of one; and the fault points the crash tests use.

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "absl/status/status.h"
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
// Fault injection for the crash tests; inert unless LUMPY_FAULT is set:
//   kill-after-step:N      SIGKILL once step N is done (its metrics row written)
//   kill-in-checkpoint:N   SIGKILL half-way through writing the checkpoint
//                          taken after step N (before the rename)
LUMPY_ENGINE_API void FaultPoint(const char* what, int64_t step);

}  // namespace lumpy
