#pragma once
// Pieces of a training run's state that checkpoints, model files and the
// best-step export share: the physical scalars (Omega_m, h0, ...) with their
// metrics.csv names, the curricula's archive, and the model of the single
// best step.

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "config/experiment.h"
#include "engine_export.h"

namespace lumpy {

// A trainable physical scalar and its metrics.csv column ("model.h0",
// "efe.omega_m").
struct PhysicalScalarSlot {
  std::string column;
  PhysicalParameter parameter;
};

// Every physical scalar of the model and the loss terms, in column order.
LUMPY_ENGINE_API std::vector<PhysicalScalarSlot> PhysicalScalars(Components& components);

// Each scalar clamped into [min, max] (the projection after every step).
LUMPY_ENGINE_API void ProjectPhysicalScalars(std::vector<PhysicalScalarSlot>& scalars);

// "physical" (float64 values) and "physical_names" (columns, one per line),
// as model files and checkpoints hold them.
LUMPY_ENGINE_API void WritePhysicalScalars(const std::vector<PhysicalScalarSlot>& scalars,
                                           torch::serialize::OutputArchive& archive);
LUMPY_ENGINE_API absl::Status ReadPhysicalScalars(torch::serialize::InputArchive& archive,
                                                  std::vector<PhysicalScalarSlot>& scalars);

// Each domain's curriculum under its domain's name.
LUMPY_ENGINE_API torch::serialize::OutputArchive WeightersArchive(Components& components);

// The first line where two texts differ, as "\"theirs\" where this one has
// \"mine\" (line N of the resolved TOML)"; nullopt if they are equal.
LUMPY_ENGINE_API std::optional<std::string> FirstDifference(const std::string& theirs,
                                                            const std::string& mine);

// The model (and curricula, and physical scalars) of the step with the
// lowest total loss so far, as the reference kept it: a snapshot in memory
// at every new best (a copy of the parameters, no I/O), saved inside every
// training checkpoint (so a resumed run keeps it exactly) and exported to
// its own file, in model.pt's format plus the curricula ("weighters") and
// the step and loss, at every checkpoint and at the end.
class LUMPY_ENGINE_API BestStep {
 public:
  BestStep(std::filesystem::path file, std::vector<PhysicalScalarSlot> scalars, std::string model_kind)
      : file_(std::move(file)), scalars_(std::move(scalars)), model_kind_(std::move(model_kind)) {}

  void Take(Components& components, int64_t step, double loss);
  // Into / out of a training checkpoint ("best_step").
  void Save(torch::serialize::OutputArchive& checkpoint) const;
  absl::Status Load(torch::serialize::InputArchive& checkpoint, Components& components);
  // Exports the snapshot to the file if it changed since the last export.
  absl::Status Write(Components& components);

  int64_t step() const { return step_; }
  int64_t written_step() const { return written_step_; }
  double written_loss() const { return written_loss_; }

 private:
  std::filesystem::path file_;
  std::vector<PhysicalScalarSlot> scalars_;
  std::string model_kind_;
  std::vector<torch::Tensor> tensors_;  // model then curricula: parameters and buffers
  std::vector<double> physical_;
  int64_t step_ = -1;
  double loss_ = INFINITY;
  int64_t written_step_ = -1;
  double written_loss_ = INFINITY;
};

}  // namespace lumpy
