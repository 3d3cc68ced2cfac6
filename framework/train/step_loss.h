#pragma once
// One training step's loss: each domain's points drawn, one jet and one
// Geometry per domain shared by its terms (PointSetContext), every term
// evaluated and checked, constraint violations turned into penalties by
// their handlers, each domain reduced by its curriculum; with the step's
// metrics.csv row (handler and curriculum telemetry included).

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "config/experiment.h"
#include "engine_export.h"
#include "lumpy/constraint_handler.h"
#include "physics/ray_states.h"
#include "train/state.h"

namespace lumpy {

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

// What a domain's curriculum reduced this step, detached: the points [B,4]
// and the per-point loss [B] (the whole step's, on every rank); undefined
// where the domain had no per-point loss.
struct CurriculumInput {
  torch::Tensor points, loss;
};

// One step's loss and its metrics row (the learning rate and wall time not
// yet appended).
struct StepLoss {
  torch::Tensor loss;
  std::vector<double> row;
  std::vector<torch::Tensor> handler_inputs;        // per loss term, for its handler's update
  std::vector<CurriculumInput> curriculum_inputs;  // per domain, for its curriculum's update
};

class Ranks;

class LUMPY_ENGINE_API StepLossEvaluator {
 public:
  // columns: metrics.csv's (MetricsLog::Columns): the row is checked against
  // them. ranks: the processes the training is spread over (ranks.h), or
  // null for one.
  StepLossEvaluator(Components& components, std::vector<std::string> columns,
                    const std::vector<PhysicalScalarSlot>& physical, torch::TensorOptions options,
                    Ranks* ranks = nullptr);

  // The loss of step `step`. Domains with ray_points draw from `rays` (where
  // the previous step's rays went), which is replaced by this step's rays.
  // Aborted for a non-finite loss or a term that threw; Internal for a
  // plugin that broke its contract.
  //
  // Over several ranks the loss is this rank's share: its slice of each
  // domain's points weighted by the slice's share of them (a domain whose
  // handler acts on the mean, whole and weighted 1/size), a dataset term's
  // partial value as it is (else the whole value weighted 1/size), so that
  // the shares' gradients add up to the loss's. The row and the handlers'
  // inputs are the whole step's on every rank.
  absl::StatusOr<StepLoss> Compute(int64_t step, RayPositions* rays);

  bool uses_ray_points() const { return uses_ray_points_; }
  int64_t points_per_step() const { return points_per_step_; }

 private:
  // What one term contributes to a step (see the .cc).
  struct TermShare;
  // A domain's points this step on this rank.
  struct DomainDraw {
    torch::Tensor points;  // this rank's share
    int64_t total = 0;     // the whole draw's size
    double weight = 1;     // of this rank's reduced loss in the sum over ranks
    bool sharded = false;
  };
  std::vector<DomainDraw> Draw(const RayPositions& rays) const;
  RayPositions Kept(RayPositions rays) const;
  torch::Tensor Gather(const torch::Tensor& mine, int64_t total, int64_t width = 1) const;
  std::vector<double> SumOverRanks(const std::vector<double>& row, const std::vector<double>& weights) const;
  double Rank0() const { return rank_ == 0 ? 1.0 : 0.0; }
  absl::StatusOr<TermShare> EvaluateTerm(const LossComponent& l, StepContext& ctx, int64_t step, size_t column);
  absl::Status AppendTelemetry(const std::vector<std::pair<std::string, double>>& telemetry,
                               const std::string& prefix, const std::string& who, size_t column,
                               std::vector<double>* row) const;
  void WarnOnJump(size_t term, double value, int64_t step);

  Components& c_;
  const std::vector<std::string> columns_;
  const std::vector<PhysicalScalarSlot>& physical_;
  const torch::TensorOptions options_;
  std::vector<int> domain_of_;      // per loss term: its domain's index, -1 for a dataset term
  std::vector<double> last_value_;  // per loss term: its value at the previous step
  std::vector<char> warned_;        // per loss term: a jump was reported
  bool uses_ray_points_ = false;    // some domain draws ray_points
  int64_t points_per_step_ = 0;
  Ranks* ranks_;
  int64_t rank_, size_;
  std::vector<char> whole_;          // per domain: computed whole on every rank
  std::vector<size_t> term_column_;  // per loss term: its value's index in the row
};

}  // namespace lumpy
