#pragma once
// The training loop: draws each domain's collocation points, computes one jet
// and one Geometry per domain and step, evaluates every loss term through
// the shared StepContext, turns constraint violations into penalties through
// their handlers, reduces each domain through its curriculum, and takes one
// Adam step. Writes the run folder as it goes.

#include "engine_export.h"
#include <filesystem>
#include <optional>

#include "absl/status/status.h"
#include "config/experiment.h"

namespace lumpy {

// A configuration error if nothing in the experiment can be trained (a
// parameter-free metric and no trainable physical parameter).
LUMPY_ENGINE_API absl::Status CheckTrainable(const Experiment& experiment, Components& components);

struct TrainOptions {
  std::filesystem::path run_dir;  // created; holds experiment.toml, metrics.csv, summary.json
  bool progress = true;           // overridden off by [telemetry] progress = false
  // Continue the run in run_dir from checkpoints/latest.pt up to
  // runtime.steps: the same trajectory as an uninterrupted run (same rows in
  // metrics.csv, wall time aside). A missing, truncated or foreign
  // checkpoint is an InvalidArgument error and changes nothing on disk.
  bool resume = false;
  // A fresh run (not a resume) starts from this model's weights: a run
  // folder (its model.pt), model.pt or a training checkpoint. Only the
  // metric's parameters (and its own physical scalars) are taken: the
  // optimizer, the handlers, the curricula and the terms' scalars start
  // fresh. A model of another kind or shape is an InvalidArgument naming
  // the tensor. Recorded in the summary ("init").
  std::filesystem::path init;
};

// The run folder: experiment.toml (resolved), metrics.csv, summary.json,
// model.pt (the final metric), checkpoints/latest.pt (every
// checkpoint.every steps and at the end) and checkpoints/best.pt (the latest
// checkpoint whose mean loss over its interval is the lowest so far).
//
// Trains the experiment. Run-time failures (a non-finite loss, I/O) are
// returned as non-InvalidArgument errors; the run folder keeps everything
// written up to the failure, and checkpoints/latest.pt the last good state.
LUMPY_ENGINE_API absl::Status Train(const Experiment& experiment, Components& components,
                   const TrainOptions& options);

}  // namespace lumpy
