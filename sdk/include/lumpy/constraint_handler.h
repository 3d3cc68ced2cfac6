#pragma once
// ConstraintHandler: turns a constraint violation into a differentiable
// penalty and owns the state that evolves between steps (multipliers,
// penalty weights, ...). Its state goes into checkpoints and telemetry.

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "lumpy/export.h"

namespace lumpy {

struct LUMPY_API Penalty {
  torch::Tensor per_point;  // [B]; mean(per_point) == total
  torch::Tensor total;      // scalar
};

class LUMPY_API ConstraintHandler {
 public:
  virtual ~ConstraintHandler();

  // v [B] >= 0, differentiable. Must use the handler's *current* state.
  virtual Penalty penalty(const torch::Tensor& violation) = 0;

  // Called after each optimizer step with that step's violation (detached).
  // `step` counts from 0; the first update is step 0. The engine watches
  // what an update does to penalty() itself: with optimizer.penalty_decay,
  // an update that raises the penalty's curvature (its second difference
  // at a unit violation: mu for lambda v + mu/2 v^2) halves the learning
  // rate. Handlers with learned parameters() are not watched (the optimizer
  // moves those).
  virtual void update(const torch::Tensor& violation, int64_t step);

  // Named scalars for metrics.csv (e.g. lambda, mu).
  virtual std::vector<std::pair<std::string, double>> telemetry() const;

  // Learned parameters (optimised with the model), if any.
  virtual std::vector<torch::Tensor> parameters();

  // Whole state, for checkpoints: every tensor that update() changes and
  // every learned parameter. load_state() must copy into the existing
  // tensors (the optimizer holds the parameters by reference) and reject a
  // missing key or a wrong shape with a message naming it.
  virtual std::map<std::string, torch::Tensor> state() const;
  virtual absl::Status load_state(const std::map<std::string, torch::Tensor>& state);
};

}  // namespace lumpy
