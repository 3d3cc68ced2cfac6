#pragma once
// What checkpoints need besides the trainer's own bookkeeping: the
// experiment's fingerprint (so a checkpoint is never resumed into a
// different experiment), the run folder's lock, and the model's own record
// in an archive (its kind; loading it back for the CLI). The durable writes
// and the crash tests' fault points are in core/atomic_file.h.

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/experiment.h"
#include "core/atomic_file.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"
#include "engine_export.h"

namespace lumpy {

// The resolved experiment as TOML, without runtime.steps (a resume may
// extend a run), telemetry.progress (display only) and
// checkpoint.every_minutes (when latest.pt is written, not what it holds).
LUMPY_ENGINE_API std::string ExperimentFingerprint(const Experiment& experiment);

// One process owns a run folder: an exclusive advisory lock (flock) on
// RUN/.lock, held while a run or resume writes there, with the holder's pid
// in the file. The kernel drops it when the process ends, however it ends.
class LUMPY_ENGINE_API RunFolderLock {
 public:
  // Creates RUN if needed and locks it; InvalidArgument naming the holder's
  // pid if another process holds it.
  static absl::StatusOr<std::unique_ptr<RunFolderLock>> Acquire(const std::filesystem::path& run_dir);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

 private:
  explicit RunFolderLock(int fd) : fd_(fd) {}
  int fd_;
};

// Archives of a metric (model.pt, training checkpoints) name its plugin
// under "model_kind"; LoadModelCheckpoint refuses an archive of another kind.
LUMPY_ENGINE_API void WriteModelKind(torch::serialize::OutputArchive& archive, const std::string& model_name);

// Loads model parameters saved by a run (`model.pt`, a run folder that holds
// one, or checkpoints/latest.pt or best.pt) into `model`, and the fitted
// physical scalars (h0, Omega_m, ...) of the model and of `terms` (each with
// its loss name), matched by their metrics.csv names. A file written before
// lumpy saved them leaves them as they are and says so in `note`.
LUMPY_ENGINE_API absl::Status LoadModelCheckpoint(
    MetricModel& model, const std::filesystem::path& path, const std::string& model_name,
    const std::vector<std::pair<std::string, LossTerm*>>& terms = {}, std::string* note = nullptr);

}  // namespace lumpy
