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
#include "physics/ray_states.h"

namespace lumpy {

// Applies [runtime]: thread count, default dtype and seed. Call before
// constructing any component.
LUMPY_ENGINE_API void ApplyRuntime(const Experiment& experiment);

LUMPY_ENGINE_API torch::TensorOptions RuntimeOptions(const Experiment& experiment);

// Draws the domain's points for one step from the global generator: every
// stratum uniform in its t range and the domain's box, then the domain's
// ray_points: first the bad states rays stopped on, the rest uniform along
// the rays' segments (the observer (1,0,0,0) while no ray was traced). [N,4].
LUMPY_ENGINE_API torch::Tensor SamplePoints(const DomainSpec& domain, const torch::TensorOptions& options,
                                            const RayPositions& rays = {});

// A configuration error if nothing in the experiment can be trained (a
// parameter-free metric and no trainable physical parameter).
LUMPY_ENGINE_API absl::Status CheckTrainable(const Experiment& experiment, Components& components);

// What a handler (a constraint's, or an objective's weighting) makes of a
// term's values [B] (a constraint's violations, or weight x an objective's
// values): per point, its per-point penalty; `on_mean`, the penalty of the
// mean over the points (lambda mean(v) + mu/2 mean(v)^2 for the augmented
// Lagrangian, as the reference's CMB priors), spread as that one value over
// the B points. `input` is what the handler saw (detached: its update()
// receives it). An error if the handler returns another shape.
struct HandledTerm {
  Penalty penalty;      // per_point [B], total scalar
  torch::Tensor input;  // [B], or [1] on the mean
};
LUMPY_ENGINE_API absl::StatusOr<HandledTerm> ApplyHandler(ConstraintHandler& handler,
                                                          const torch::Tensor& values, bool on_mean);

struct TrainOptions {
  std::filesystem::path run_dir;  // created; holds experiment.toml, metrics.csv, summary.json
  bool progress = true;           // overridden off by [telemetry] progress = false
  // Continue the run in run_dir from checkpoints/latest.pt up to
  // runtime.steps: the same trajectory as an uninterrupted run (same rows in
  // metrics.csv, wall time aside). A missing, truncated or foreign
  // checkpoint is an InvalidArgument error and changes nothing on disk.
  bool resume = false;
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
