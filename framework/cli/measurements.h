#pragma once
// Named measurements on a run folder: the building blocks that `lumpy claims`
// turns into verdicts. Each reads what a result folder holds: metrics.csv
// (or metrics.csv.gz, or a thinned metrics_every100.csv of an older
// collection), summary.json, the resolved experiment.toml and the model
// weights (model_final.pt, model_best.pt, or a run folder's model.pt and
// checkpoints/best.pt); the model-based ones probe the metric with the same
// functions as `lumpy probe` and `lumpy report` (physics/probe.h).
//
//   first_step_equal   first logged step where `column` == `equals` (NaN: never)
//   final, min, max    of `column` over the logged rows (final: the last row)
//   tail_min, tail_max   over the rows in the last `tail` (a fraction) of the run
//   tail_fraction_equal  fraction of the rows in the last `tail` of the run with `column` == `equals`
//   observer           summary.json's observer.<column> (the final model at the observer's event)
//   summary            the number at the JSON pointer `column` of summary.json
//   json               the number at FILE.json#/pointer (`column`) of another of the
//                      folder's JSON files (sky_best.json: lumpy sky's)
//   worldline_max, worldline_min, worldline_argmax, worldline_argmin,
//   worldline_fraction_negative, worldline_at, worldline_late_over_early
//                      of the probe column `column` along the observer's world line
//                      (t, x_o, y_o, z_o), t in [t_o - 5, t_o] ([-4, 1] for the default
//                      observer; 201 points; worldline_at: at the t nearest `at`;
//                      argmax/argmin: the t of the extreme; late_over_early: its value
//                      at t_o over t_o - 5)
//   plane_min, plane_max, plane_fraction_negative, plane_min_over_max,
//   plane_max_over_min, plane_range_over_max
//                      of `column` at the observer's time (t_o) on the plane `plane`
//                      through it (xy, yz, xz, or all three), 41 x 41 points over [-1, 1]^2
// The probe columns are lumpy probe's (ricci_scalar, H_x, H_y, H_z, shear_sq,
// g_00, ...) and derived ones: H_mean, H_max, H_min, H_spread,
// H_anisotropy (spread / |mean|), H_sign_mix (H_min x H_max: < 0 when some
// axes expand and others contract), shear_over_h2 (sigma^2 / H_mean^2).
// Model-based measurements use `checkpoint` ("final" or "best").
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace lumpy {

// The measurement's arguments, as a claim gives them.
struct MeasurementArgs {
  std::string column;
  double equals = 0, tail = 0.2, at = 1.0;
  std::string plane = "all";
  std::string checkpoint = "final";
};

// Every measurement's name, for the claim files' declaration.
const std::vector<std::string>& MeasurementNames();

// One result folder, its files read once.
class ResultFolder {
 public:
  explicit ResultFolder(std::filesystem::path dir);
  ~ResultFolder();
  const std::filesystem::path& dir() const { return dir_; }

  // NotFound when the folder lacks what the measurement needs (say, model
  // weights), InvalidArgument for an unknown column.
  absl::StatusOr<double> Measure(const std::string& name, const MeasurementArgs& args);

 private:
  struct Loaded;
  absl::Status ReadMetrics();
  absl::StatusOr<torch::Tensor> Probe(const std::string& checkpoint, const std::string& where);
  std::filesystem::path dir_;
  std::map<std::string, std::vector<double>> metrics_;  // column -> values by row
  bool metrics_read_ = false;
  std::map<std::string, torch::Tensor> probes_;          // checkpoint + where -> probe table
  std::unique_ptr<Loaded> loaded_;
};

}  // namespace lumpy
