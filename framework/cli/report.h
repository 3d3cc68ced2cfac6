#pragma once
// `lumpy report RUN_DIR`: the tables and figures of a finished (or stopped)
// run in RUN_DIR/report/. The CSV tables are computed here from the run's
// metric (probe columns along the observer's world line and on three planes
// today, the curricula's weights, the Hubble diagram of every supernova
// term); scripts/report_figures.py draws them, with metrics.csv's training
// curves, and writes report.md.

#include <string>
#include <utility>

#include "engine_export.h"
#include "lumpy/jet.h"

namespace lumpy {

struct ReportOptions {
  std::string run_dir;
  // final (model.pt), latest, best (checkpoints/best.pt), best_step
  // (checkpoints/best_step.pt); empty: the experiment's [report] checkpoint.
  std::string checkpoint;
  int grid = 81;                     // points per side of each plane
  int worldline = 251;               // points along t in [-4, 1]
  bool figures = true;               // run scripts/report_figures.py
  // Also H_mean and shear along the world line as the part-1 notebook
  // computed them (worldline_notebook.csv); the experiment's [report]
  // notebook_kinematics turns it on too.
  bool notebook_kinematics = false;
};

// H_mean and sigma^2 along points from a jet of order >= 1, by Geometry's
// 3+1 formulas (H = gamma^-1 D / (2N), H_mean = tr H / 3, sigma = H -
// H_mean 1, sigma^2 = tr(sigma sigma) / 2), with D_ij = d_t gamma_ij, or,
// `notebook`, D_ij = d_j g_i0: what the part-1 notebook computed (jacfwd(model)(x)[:, 0]
// is d_c g_a0, not d_t g_ab; monitor_training.ipynb@3bb1c35, fixed in
// 067e7de). [N] each.
LUMPY_ENGINE_API std::pair<torch::Tensor, torch::Tensor> WorldLineKinematics(const Jet& jet, bool notebook);

// `lumpy certify RUN_DIR`: the held-out certificate (train/certify.h) of a
// run's checkpoint, written to RUN_DIR/certificate_<checkpoint>.json and
// printed with the time it took.
struct CertifyCommandOptions {
  std::string run_dir;
  std::string checkpoint;  // final, latest, best, best_step; empty: the experiment's [report] checkpoint
  int64_t points = 0;      // grid size; 0: the experiment's certify.points
};
LUMPY_ENGINE_API int RunCertify(const CertifyCommandOptions& options);

// Exit status as the CLI's: 2 for a bad run folder or options, 1 if a table
// could not be computed or written, 0.
LUMPY_ENGINE_API int RunReport(const ReportOptions& options);

}  // namespace lumpy
