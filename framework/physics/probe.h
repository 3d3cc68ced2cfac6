#pragma once
// `lumpy probe`: the metric and its geometry at user-given points.

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine_export.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"

namespace lumpy {

// Reads a CSV with a header naming (at least) t, x, y, z, in any order;
// other columns are ignored, as are blank lines and lines starting with '#'.
// Errors (InvalidArgument) name the file, line and column: a missing column,
// a row with the wrong number of fields, a value that is not a number or not
// finite, no points at all. Returns [N,4] (t,x,y,z) and, in `lines`, each
// point's line number.
LUMPY_ENGINE_API absl::StatusOr<torch::Tensor> ReadPointsCsv(
    const std::filesystem::path& file, const torch::TensorOptions& options,
    std::vector<int64_t>* lines);

// The probe's output columns, in order.
LUMPY_ENGINE_API const std::vector<std::string>& ProbeColumns();

// Evaluates the metric at the points of `in` and writes `out` (atomically):
// t,x,y,z, the 10 metric components, the Ricci scalar, the per-point EFE
// residual of `efe` (if given; else the column is empty), H_x, H_y, H_z and
// sigma^2, every number at full precision. Points outside the metric's domain
// are an InvalidArgument error naming their lines; non-finite geometry at
// points inside it is written and reported through `warning`.
LUMPY_ENGINE_API absl::Status ProbeToCsv(MetricModel& model, LossTerm* efe,
                                         const std::filesystem::path& in,
                                         const std::filesystem::path& out,
                                         const torch::TensorOptions& options,
                                         std::string* warning);

// Archives of a metric (model.pt, training checkpoints) name its plugin
// under "model_kind"; LoadModelCheckpoint refuses an archive of another kind.
LUMPY_ENGINE_API void WriteModelKind(torch::serialize::OutputArchive& archive, const std::string& model_name);

// The same columns for the points [N,4] (all inside the metric's domain),
// written to `out` atomically; rows whose geometry is not finite are written
// and their indices appended to `non_finite`.
LUMPY_ENGINE_API absl::Status WriteProbeCsv(MetricModel& model, LossTerm* efe,
                                            const torch::Tensor& points,
                                            const std::filesystem::path& out,
                                            std::vector<int64_t>* non_finite);
// Copies a saved module's parameters and buffers into `module` tensor by
// tensor (Module::load would adopt the saved dtype or shape as they are),
// converting dtype and device, refusing a missing tensor or another shape;
// messages name the tensor after `prefix`.
LUMPY_ENGINE_API absl::Status LoadModuleState(torch::nn::Module& module,
                                              torch::serialize::InputArchive& archive,
                                              const std::string& prefix = "");
// Loads model parameters saved by a run (`model.pt`, a run folder that holds
// one, or checkpoints/latest.pt or best.pt) into `model`, and the fitted
// physical scalars (h0, Omega_m, ...) of the model and of `terms` (each with
// its loss name), matched by their metrics.csv names. A file written before
// lumpy saved them leaves them as they are and says so in `note`.
LUMPY_ENGINE_API absl::Status LoadModelCheckpoint(
    MetricModel& model, const std::filesystem::path& path, const std::string& model_name,
    const std::vector<std::pair<std::string, LossTerm*>>& terms = {}, std::string* note = nullptr);

}  // namespace lumpy
