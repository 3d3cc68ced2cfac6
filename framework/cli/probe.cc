#include "cli/probe.h"

#include "core/input_file.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "data/table.h"
#include "lumpy/geometry.h"
#include "core/atomic_file.h"
#include "physics/point_set_context.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kBatch = 4096;

std::string Lines(const std::vector<int64_t>& lines, size_t most = 8) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < lines.size() && i < most; ++i) parts.push_back(std::to_string(lines[i]));
  std::string text = absl::StrJoin(parts, ", ");
  if (lines.size() > most) absl::StrAppend(&text, ", ... (", lines.size(), " in all)");
  return text;
}

}  // namespace

absl::StatusOr<torch::Tensor> ReadPointsCsv(const fs::path& file,
                                            const torch::TensorOptions& options,
                                            std::vector<int64_t>* lines) {
  LUMPY_ASSIGN_OR_RETURN(auto table, TextTable::Read(file, TextTable::Separator::kComma, "points file"));
  lines->clear();
  if (table.header().empty() || table.rows() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": no points (expected a header t,x,y,z and one row per point)"));
  }
  LUMPY_ASSIGN_OR_RETURN(auto columns, table.Columns({"t", "x", "y", "z"}));
  std::vector<double> values;
  for (size_t row = 0; row < table.rows(); ++row) {
    for (int c : columns) {
      LUMPY_ASSIGN_OR_RETURN(auto v, table.Number(row, c));
      values.push_back(v);
    }
    lines->push_back(table.line(row));
  }
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64))
      .view({-1, 4})
      .to(options);
}

const std::vector<std::string>& ProbeColumns() {
  static const std::vector<std::string> columns = {
      "t", "x", "y", "z", "g_00", "g_01", "g_02", "g_03", "g_11", "g_12", "g_13", "g_22", "g_23",
      "g_33", "ricci_scalar", "efe_residual", "H_x", "H_y", "H_z", "shear_sq"};
  return columns;
}

torch::Tensor ProbeTable(MetricModel& model, LossTerm* efe, const Event& observer, const torch::Tensor& points) {
  std::vector<torch::Tensor> parts;
  const int64_t n = points.size(0);
  for (int64_t start = 0; start < n; start += kBatch) {
    auto x = points.narrow(0, start, std::min(kBatch, n - start));
    // Derivatives are taken in the coordinates; no parameter graph is kept.
    torch::NoGradGuard no_grad;
    PointSetContext ctx(model, x, nullptr, 0, {}, observer);
    Geometry& geo = ctx.geometry(2);
    auto g = geo.metric().reshape({-1, 16});
    auto upper = torch::tensor({0, 1, 2, 3, 5, 6, 7, 10, 11, 15}, torch::kLong).to(g.device());
    std::vector<torch::Tensor> cols = {x, g.index_select(1, upper), geo.ricci_scalar().unsqueeze(1)};
    cols.push_back(efe ? efe->evaluate(ctx).per_point.unsqueeze(1) : torch::full({x.size(0), 1}, NAN, x.options()));
    cols.push_back(geo.hubble_rates());
    cols.push_back(geo.shear_squared().unsqueeze(1));
    parts.push_back(torch::cat(cols, 1).to(torch::kCPU).to(torch::kFloat64));
  }
  return torch::cat(parts, 0).contiguous();
}

torch::Tensor WorldLinePoints(int64_t n, const Event& observer, const torch::TensorOptions& options) {
  auto points = EventPoint(observer, options).repeat({n, 1});
  points.select(1, 0).copy_(torch::linspace(observer[0] - 5.0, observer[0], n, options));
  return points;
}

torch::Tensor PlanePoints(const std::string& plane, int64_t grid, const std::vector<double>& box,
                          const Event& observer, const torch::TensorOptions& options) {
  const int u = plane == "yz" ? 2 : 1, v = plane == "xy" ? 2 : 3;
  auto a = torch::linspace(box.at(2 * (u - 1)), box.at(2 * (u - 1) + 1), grid, options);
  auto b = torch::linspace(box.at(2 * (v - 1)), box.at(2 * (v - 1) + 1), grid, options);
  auto mesh = torch::meshgrid({a, b}, "ij");
  auto points = EventPoint(observer, options).repeat({grid * grid, 1});
  points.select(1, u).copy_(mesh[0].reshape({-1}));
  points.select(1, v).copy_(mesh[1].reshape({-1}));
  return points;
}

absl::Status WriteProbeCsv(MetricModel& model, LossTerm* efe, const Event& observer, const torch::Tensor& points,
                           const fs::path& out, std::vector<int64_t>* non_finite) {
  std::ostringstream csv;
  csv << absl::StrJoin(ProbeColumns(), ",") << "\n";
  const auto table = ProbeTable(model, efe, observer, points);
  const double* data = table.data_ptr<double>();
  const int64_t width = table.size(1);
  for (int64_t i = 0; i < table.size(0); ++i) {
    bool finite = true;
    for (int64_t j = 0; j < width; ++j) {
      const double v = data[i * width + j];
      if (j == 15 && !efe) {
        csv << ",";
        continue;
      }
      finite &= std::isfinite(v);
      csv << (j ? "," : "") << absl::StrFormat("%.17g", v);
    }
    csv << "\n";
    if (!finite) non_finite->push_back(i);
  }
  return WriteAtomically(out, csv.str());
}

absl::Status ProbeToCsv(MetricModel& model, LossTerm* efe, const Event& observer, const fs::path& in,
                        const fs::path& out, const torch::TensorOptions& options,
                        std::string* warning) {
  std::vector<int64_t> lines;
  LUMPY_ASSIGN_OR_RETURN(auto points, ReadPointsCsv(in, options, &lines));
  {
    torch::NoGradGuard no_grad;
    auto inside = model.in_domain(points).to(torch::kCPU);
    std::vector<int64_t> outside;
    for (int64_t i = 0; i < inside.size(0); ++i) {
      if (!inside[i].item<bool>()) outside.push_back(lines[i]);
    }
    if (!outside.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          in.string(), ": ", outside.size(), " point(s) lie outside where the metric is defined "
          "(before a big bang, inside a horizon, ...): line(s) ", Lines(outside)));
    }
  }
  std::vector<int64_t> non_finite;
  LUMPY_RETURN_IF_ERROR(WriteProbeCsv(model, efe, observer, points, out, &non_finite));
  if (!non_finite.empty()) {
    for (auto& row : non_finite) row = lines[row];
    *warning = absl::StrCat(in.string(), ": the geometry is not finite at ", non_finite.size(),
                            " point(s) (a degenerate metric?): line(s) ", Lines(non_finite));
  }
  return absl::OkStatus();
}

// Module::load set_()s each saved tensor into the module as it is, so a
// float64 checkpoint read into a float32 model, or a checkpoint of another
// width, silently breaks it. This copies tensor by tensor instead, converting
// dtype and device and refusing any shape that differs.
}  // namespace lumpy
