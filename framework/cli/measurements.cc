#include <torch/torch.h>

#include "cli/measurements.h"

#include <zlib.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/run_folder.h"
#include "core/input_file.h"
#include "data/metrics_table.h"
#include "lumpy/status_macros.h"
#include "cli/probe.h"

namespace lumpy {

namespace fs = std::filesystem;

const std::vector<std::string>& MeasurementNames() {
  static const std::vector<std::string> names = {
      "first_step_equal", "final", "min", "max", "tail_min", "tail_max", "tail_fraction_equal", "observer",
      "summary", "json", "worldline_max", "worldline_min", "worldline_argmax", "worldline_argmin",
      "worldline_fraction_negative", "worldline_at", "worldline_late_over_early", "plane_min", "plane_max",
      "plane_fraction_negative", "plane_min_over_max", "plane_max_over_min", "plane_range_over_max"};
  return names;
}

struct ResultFolder::Loaded {
  std::map<std::string, std::unique_ptr<LoadedExperiment>> by_checkpoint;
};

ResultFolder::ResultFolder(fs::path dir) : dir_(std::move(dir)), loaded_(std::make_unique<Loaded>()) {}
ResultFolder::~ResultFolder() = default;

namespace {

// The whole text of a file, gunzipped if it ends in .gz.
absl::StatusOr<std::string> ReadText(const fs::path& file) {
  if (file.extension() != ".gz") return ReadInputFile(file, InputKind::kMetrics, "metrics table");
  LUMPY_RETURN_IF_ERROR(CheckInputFile(file, InputKind::kMetrics, "metrics table"));
  gzFile gz = gzopen(file.c_str(), "rb");
  if (gz == nullptr) return absl::NotFoundError(absl::StrCat(file.string(), ": cannot open"));
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(gz, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (size_t{1} << 31)) break;  // 2 GiB of text: not a metrics table
  }
  const bool bad = n < 0;
  gzclose(gz);
  if (bad) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": not a readable gzip file"));
  return out;
}

absl::StatusOr<nlohmann::json> ReadJson(const fs::path& file) {
  if (!fs::exists(file) && !fs::is_symlink(file)) return absl::NotFoundError(absl::StrCat(file.string(), ": missing"));
  LUMPY_ASSIGN_OR_RETURN(auto text, ReadInputFile(file, InputKind::kRunFile, "result file"));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": not JSON"));
  return j;
}

// A column of the probe table, or one derived from its Hubble rates:
// H_mean = (H_x + H_y + H_z)/3; H_max, H_min; H_spread = H_max - H_min;
// H_anisotropy = H_spread / |H_mean|; H_sign_mix = H_min x H_max (< 0: some
// axes expand while others contract); shear_over_h2 = sigma^2 / H_mean^2.
using ColumnOf = std::function<torch::Tensor(const torch::Tensor&)>;
absl::StatusOr<ColumnOf> ProbeColumn(const std::string& name) {
  const auto& columns = ProbeColumns();
  const auto col = std::find(columns.begin(), columns.end(), name) - columns.begin();
  if (col < static_cast<int64_t>(columns.size())) {
    return ColumnOf([col](const torch::Tensor& t) { return t.select(1, col); });
  }
  const int64_t hx = std::find(columns.begin(), columns.end(), "H_x") - columns.begin();
  const int64_t shear = std::find(columns.begin(), columns.end(), "shear_sq") - columns.begin();
  auto h = [hx](const torch::Tensor& t) { return t.narrow(1, hx, 3); };
  const std::map<std::string, ColumnOf> derived = {
      {"H_mean", [h](const torch::Tensor& t) { return h(t).mean(1); }},
      {"H_max", [h](const torch::Tensor& t) { return std::get<0>(h(t).max(1)); }},
      {"H_min", [h](const torch::Tensor& t) { return std::get<0>(h(t).min(1)); }},
      {"H_spread", [h](const torch::Tensor& t) { return std::get<0>(h(t).max(1)) - std::get<0>(h(t).min(1)); }},
      {"H_anisotropy",
       [h](const torch::Tensor& t) {
         return (std::get<0>(h(t).max(1)) - std::get<0>(h(t).min(1))) / h(t).mean(1).abs();
       }},
      {"H_sign_mix", [h](const torch::Tensor& t) { return std::get<0>(h(t).max(1)) * std::get<0>(h(t).min(1)); }},
      {"shear_over_h2", [h, shear](const torch::Tensor& t) { return t.select(1, shear) / h(t).mean(1).square(); }},
  };
  if (auto it = derived.find(name); it != derived.end()) return it->second;
  std::vector<std::string> known = columns;
  for (const auto& [k, f] : derived) known.push_back(k);
  return absl::InvalidArgumentError(
      absl::StrCat("column: one of the probe's or a derived one (", absl::StrJoin(known, ", "), "), got \"", name, "\""));
}

// A measurement of the metrics table's `v` (its column), with its steps.
double OfMetrics(const std::string& name, const std::vector<double>& v, const std::vector<double>& steps,
                 const MeasurementArgs& a) {
  if (name == "final") return v.back();
  if (name == "min") return *std::min_element(v.begin(), v.end());
  if (name == "max") return *std::max_element(v.begin(), v.end());
  if (name == "first_step_equal") {
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == a.equals) return steps[i];
    }
    return NAN;
  }
  const double last = steps.back(), from = last - a.tail * last;
  int64_t n = 0, hit = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < v.size(); ++i) {
    if (steps[i] < from) continue;
    ++n;
    hit += v[i] == a.equals;
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  if (n == 0) return NAN;
  if (name == "tail_min") return lo;
  if (name == "tail_max") return hi;
  return static_cast<double>(hit) / static_cast<double>(n);
}

// The number at a JSON pointer of one of the folder's JSON files: observer
// and summary in summary.json, json at FILE.json#/pointer (`column`).
absl::StatusOr<double> OfJson(const fs::path& dir, const std::string& name, const MeasurementArgs& a) {
  std::string file = "summary.json", pointer = name == "observer" ? "/observer/" + a.column : a.column;
  if (name == "json") {  // FILE#POINTER, FILE one of the folder's own JSON files
    const size_t hash = a.column.find('#');
    file = a.column.substr(0, hash);
    pointer = hash == std::string::npos ? "" : a.column.substr(hash + 1);
    if (hash == std::string::npos || file.empty() || file.find('/') != std::string::npos ||
        fs::path(file).extension() != ".json" || pointer.empty() || pointer[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "column: FILE.json#/json/pointer, FILE one of the result folder's JSON files, got \"", a.column, "\""));
    }
  }
  LUMPY_ASSIGN_OR_RETURN(auto j, ReadJson(dir / file));
  const nlohmann::json* node = nullptr;
  try {
    const nlohmann::json::json_pointer at(pointer);
    if (j.contains(at)) node = &j.at(at);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("column: \"", pointer, "\" is not a JSON pointer (", e.what(), ")"));
  }
  if (node == nullptr || !node->is_number()) {
    return absl::NotFoundError(absl::StrCat("no number at ", pointer, " in ", (dir / file).string()));
  }
  return node->get<double>();
}

// A model-based measurement of `v`, the column of the probe table `table`
// (its first column the time).
absl::StatusOr<double> OfProbe(const std::string& name, const torch::Tensor& table, const torch::Tensor& v,
                               const MeasurementArgs& a) {
  if (name == "worldline_argmin") return table[v.argmin().item<int64_t>()][0].item<double>();
  if (name == "worldline_late_over_early") return (v[-1] / v[0]).item<double>();
  if (name == "plane_min_over_max") return (v.min() / v.max()).item<double>();
  if (name == "plane_max_over_min") return (v.max() / v.min()).item<double>();
  if (name == "plane_range_over_max") return ((v.max() - v.min()) / v.abs().max()).item<double>();
  if (name == "worldline_max" || name == "plane_max") return v.max().item<double>();
  if (name == "worldline_min" || name == "plane_min") return v.min().item<double>();
  if (name == "worldline_argmax") return table[v.argmax().item<int64_t>()][0].item<double>();
  if (name == "worldline_fraction_negative" || name == "plane_fraction_negative") {
    return (v < 0).to(torch::kFloat64).mean().item<double>();
  }
  if (name == "worldline_at") {
    return v[(table.select(1, 0) - a.at).abs().argmin().item<int64_t>()].item<double>();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown measurement \"", name, "\""));
}

}  // namespace

absl::Status ResultFolder::ReadMetrics() {
  if (metrics_read_) return absl::OkStatus();
  fs::path file;
  for (const char* name : {"metrics.csv.gz", "metrics.csv", "metrics_every100.csv"}) {
    if (fs::is_regular_file(dir_ / name)) {
      file = dir_ / name;
      break;
    }
  }
  if (file.empty()) return absl::NotFoundError(absl::StrCat(dir_.string(), ": no metrics.csv(.gz)"));
  LUMPY_ASSIGN_OR_RETURN(auto text, ReadText(file));
  LUMPY_ASSIGN_OR_RETURN(auto table, ParseMetricsTable(text, file));
  for (const auto& name : table.columns) metrics_.emplace(name, table.Column(name));  // a repeated name: its first
  if (metrics_.count("step") == 0) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": no step column"));
  metrics_read_ = true;
  return absl::OkStatus();
}

// The probe table of the checkpoint's model at the world line or today's planes.
absl::StatusOr<torch::Tensor> ResultFolder::Probe(const std::string& checkpoint, const std::string& where) {
  const std::string key = checkpoint + "/" + where;
  if (auto it = probes_.find(key); it != probes_.end()) return it->second;
  auto& slot = loaded_->by_checkpoint[checkpoint];
  if (!slot) {
    fs::path model = dir_ / (checkpoint == "best" ? "model_best.pt" : "model_final.pt");
    if (!fs::exists(model)) model = checkpoint == "best" ? dir_ / "checkpoints" / "best.pt" : dir_ / "model.pt";
    if (!fs::exists(model) || !fs::exists(dir_ / "experiment.toml")) {
      return absl::NotFoundError(absl::StrCat("no ", checkpoint, " model weights in ", dir_.string(),
                                              " (model_", checkpoint, ".pt and experiment.toml)"));
    }
    auto run = std::make_unique<LoadedExperiment>();
    LUMPY_RETURN_IF_ERROR(LoadAndBuild(dir_ / "experiment.toml", {"runtime.dtype=float64", "runtime.threads=0"}, run.get()));
    LUMPY_RETURN_IF_ERROR(LoadMetric(model, run.get()));
    slot = std::move(run);
  }
  MetricModel& metric = *slot->c.model;
  torch::Tensor points;
  if (where == "worldline") {
    points = WorldLinePoints(201, slot->c.observer, slot->options);
  } else {
    std::vector<torch::Tensor> planes;
    for (const char* p : {"xy", "yz", "xz"}) {
      if (where == "all" || where == p) planes.push_back(PlanePoints(p, 41, {-1, 1, -1, 1, -1, 1}, slot->c.observer, slot->options));
    }
    if (planes.empty()) return absl::InvalidArgumentError(absl::StrCat("plane: xy, yz, xz or all, got ", where));
    points = torch::cat(planes, 0);
  }
  auto table = ProbeTable(metric, ProbeColumnTerm(slot->c), slot->c.observer, points);
  probes_[key] = table;
  return table;
}

absl::StatusOr<double> ResultFolder::Measure(const std::string& name, const MeasurementArgs& a) {
  if (name == "first_step_equal" || name == "final" || name == "min" || name == "max" ||
      name == "tail_fraction_equal" || name == "tail_min" || name == "tail_max") {
    LUMPY_RETURN_IF_ERROR(ReadMetrics());
    auto it = metrics_.find(a.column);
    if (it == metrics_.end() || it->second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("no column \"", a.column, "\" in the metrics of ", dir_.string()));
    }
    return OfMetrics(name, it->second, metrics_.at("step"), a);
  }
  if (name == "observer" || name == "summary" || name == "json") return OfJson(dir_, name, a);
  const bool worldline = name.rfind("worldline_", 0) == 0;
  if (!std::count(MeasurementNames().begin(), MeasurementNames().end(), name)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown measurement \"", name, "\""));
  }
  auto column = ProbeColumn(a.column);
  if (!column.ok()) return column.status();
  LUMPY_ASSIGN_OR_RETURN(auto table, Probe(a.checkpoint, worldline ? "worldline" : a.plane));
  return OfProbe(name, table, (*column)(table), a);
}

}  // namespace lumpy
