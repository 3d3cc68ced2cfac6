#pragma once
// ConstraintHandler: turns a constraint violation into a differentiable
// penalty and owns the state that evolves between steps (multipliers,
// penalty weights, ...): its registered buffers and parameters, saved in
// checkpoints, and its telemetry.

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

// A handler is a torch::nn::Module: what it keeps between steps is its
// registered state, as for curricula and metrics (module_state.h). Register
// what update() changes with register_buffer and what is learned with the
// model with register_parameter, in the constructor; the engine saves both
// in checkpoints and restores them (checking names and shapes), and trains
// the parameters (Module::parameters()). Keep nothing else that penalty()
// reads and update() changes: it would be lost on resume (the conformance
// kit, lumpy/testing/conformance.h, finds such a member).
class LUMPY_API ConstraintHandler : public torch::nn::Module {
 public:
  ~ConstraintHandler() override;
  // v [B] >= 0, differentiable. Must use the handler's *current* state.
  virtual Penalty penalty(const torch::Tensor& violation) = 0;
  // Called after each optimizer step with that step's violation (detached).
  // `step` counts from 0; the first update is step 0. The engine watches
  // what an update does to penalty() itself: with optimizer.penalty_decay,
  // an update that raises the penalty's curvature (its second difference
  // at a unit violation: mu for lambda v + mu/2 v^2) halves the learning
  // rate. Handlers with learned parameters are not watched (the optimizer
  // moves those).
  virtual void update(const torch::Tensor& violation, int64_t step);
  // Named scalars for metrics.csv (e.g. lambda, mu). The names must be the
  // same from construction on.
  virtual std::vector<std::pair<std::string, double>> telemetry() const;
};

}  // namespace lumpy
