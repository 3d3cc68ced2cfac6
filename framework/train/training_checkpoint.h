#pragma once
// The training checkpoint (checkpoints/latest.pt, best.pt): everything a
// resumed run needs to continue the same trajectory. Format
// "lumpy-checkpoint-1": the experiment's fingerprint, the loop's
// bookkeeping, the RNG, the model, the optimizer, every curriculum and
// handler (their registered tensors), the physical scalars, the best step's
// snapshot and, where a domain draws ray_points, where the last step's rays
// went.

#include <torch/torch.h>

#include <filesystem>

#include "absl/status/status.h"
#include "config/experiment.h"
#include "physics/ray_states.h"
#include "train/state.h"

namespace lumpy {

// The loop's bookkeeping; all of it goes into checkpoints.
struct LoopState {
  int64_t next_step = 0;
  double best_loss = INFINITY;
  int64_t best_step = -1;
  double lr_scale = 1.0;  // penalty-coupled decay
  double window_sum = 0;  // loss summed since the last checkpoint
  int64_t window_count = 0;
  double best_window = INFINITY;  // lowest interval mean among checkpoints
};

// Where each part of a checkpoint lives in a running trainer.
struct TrainingState {
  const Experiment& experiment;
  Components& components;
  torch::optim::Optimizer& optimizer;
  std::vector<PhysicalScalarSlot>& physical;
  BestStep* best_step;  // null when the experiment keeps none
  bool ray_points;      // some domain draws ray_points: `rays` is saved
  RayPositions& rays;
  LoopState& loop;
};

torch::serialize::OutputArchive WriteTrainingCheckpoint(const TrainingState& state);

// Loads `file` into `state`. InvalidArgument, naming the file and what is
// wrong, for a missing, truncated, foreign or incompatible checkpoint; the
// loop state is only replaced once everything else has loaded.
absl::Status ReadTrainingCheckpoint(const std::filesystem::path& file, TrainingState& state);

}  // namespace lumpy
