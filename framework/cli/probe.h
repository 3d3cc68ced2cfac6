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
// residual of `efe` (if given; else the column is empty; H today taken at
// `observer`, the experiment's [observer] event), H_x, H_y, H_z and
// sigma^2, every number at full precision. Points outside the metric's domain
// are an InvalidArgument error naming their lines; non-finite geometry at
// points inside it is written and reported through `warning`.
LUMPY_ENGINE_API absl::Status ProbeToCsv(MetricModel& model, LossTerm* efe, const Event& observer,
                                         const std::filesystem::path& in,
                                         const std::filesystem::path& out,
                                         const torch::TensorOptions& options,
                                         std::string* warning);

// The probe's columns (ProbeColumns) at the points [N,4], float64 [N,20] on
// the CPU (efe_residual NaN without `efe`): the building block of the
// probe, the report's world lines and planes, and the claims' measurements.
LUMPY_ENGINE_API torch::Tensor ProbeTable(MetricModel& model, LossTerm* efe, const Event& observer,
                                          const torch::Tensor& points);

// The comoving observer's world line through its event (t_o, x_o, y_o, z_o):
// (t, x_o, y_o, z_o), n points evenly over t in [t_o - 5, t_o] (the
// default observer's: [-4, 1]). [n,4].
LUMPY_ENGINE_API torch::Tensor WorldLinePoints(int64_t n, const Event& observer, const torch::TensorOptions& options);

// The observer's today (t = t_o) on a plane through its position, grid x
// grid points over the box's two extents: "xy" (z = z_o), "yz" (x = x_o)
// or "xz" (y = y_o); box holds {x0, x1, y0, y1, z0, z1}. [grid^2, 4], the
// first in-plane axis slowest.
LUMPY_ENGINE_API torch::Tensor PlanePoints(const std::string& plane, int64_t grid, const std::vector<double>& box,
                                           const Event& observer, const torch::TensorOptions& options);

// The same columns for the points [N,4] (all inside the metric's domain),
// written to `out` atomically; rows whose geometry is not finite are written
// and their indices appended to `non_finite`.
LUMPY_ENGINE_API absl::Status WriteProbeCsv(MetricModel& model, LossTerm* efe, const Event& observer,
                                            const torch::Tensor& points,
                                            const std::filesystem::path& out,
                                            std::vector<int64_t>* non_finite);

}  // namespace lumpy
