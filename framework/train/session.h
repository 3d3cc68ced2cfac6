#pragma once
// The trainer's run (private to train/): the parameter groups, the optimizer,
// the metrics log, the loop's bookkeeping and the checkpoints that capture
// all of it. Run() is set-up, the loop and the finish; each step is the
// step loss (step_loss.h) then Update (the optimizer step). trainer.cc holds
// the loop, run_summary.cc the summary written at the end.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "config/experiment.h"
#include "physics/ray_states.h"
#include "train/metrics_log.h"
#include "train/ranks.h"
#include "train/schedule.h"
#include "train/state.h"
#include "train/step_loss.h"
#include "train/trainer.h"
#include "train/training_checkpoint.h"

namespace lumpy {

class Session {
 public:
  // ranks: the processes one training is spread over (ranks.h), or null.
  Session(const Experiment& exp, Components& c, const TrainOptions& options, Ranks* ranks = nullptr);
  absl::Status Run();

 private:
  // How the loop ended, for the summary and the exit status.
  struct Ending {
    absl::Status failure;   // a run-time failure (non-finite loss, a term that threw)
    std::string interrupted;
    std::string stop_reason;
  };
  // Where the time goes (seconds, this process).
  struct Timing {
    double loss = 0, backward = 0, step = 0, checkpoint = 0;
  };

  // Set-up.
  absl::Status Prepare();
  void BuildOptimizer();
  absl::Status PrepareResume();
  absl::Status OpenRunFolder();
  // The loop, after Prepare; collectives throw when a rank is gone.
  absl::Status Loop();
  // Over several ranks rank 0 alone writes the run folder.
  bool writer() const { return ranks_ == nullptr || ranks_->rank() == 0; }
  // The step.
  void Update(const StepLoss& s, int64_t step);
  void SumGradientsOverRanks();
  int SignalOnAnyRank(int mine);
  double SetLearningRate(int64_t step);
  std::string StopReason(int64_t step, double loss) const;
  // Checkpoints. certify: certify a new best checkpoint (not while stopping
  // on a signal: Slurm's warning leaves little time).
  TrainingState State();
  absl::Status SaveLatest(int64_t step);
  absl::Status SaveCheckpoint(int64_t step, bool certify = true);
  absl::Status MaybeCheckpoint(int64_t step);
  // The finish (run_summary.cc).
  absl::Status Finish(const Ending& ending);
  nlohmann::json Summary(const Ending& ending) const;
  nlohmann::json HeldOut(nlohmann::json* summary);

  const Experiment& exp_;
  Components& c_;
  const TrainOptions& options_;
  Ranks* ranks_;
  LearningRateSchedule schedule_;
  const std::filesystem::path run_dir_, checkpoints_;
  torch::TensorOptions tensor_options_;
  std::vector<torch::Tensor> network_, others_;
  std::vector<PhysicalScalarSlot> physical_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<double> group_factor_;  // per optimizer group: lr factor over the network's
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<StepLossEvaluator> evaluator_;
  std::unique_ptr<BestStep> best_step_;
  LoopState loop_;
  int64_t first_step_ = 0;
  double resumed_wall_time_ = 0;  // wall time of the last kept metrics row
  nlohmann::json previous_summary_;
  nlohmann::json best_checkpoint_;
  std::vector<double> last_row_;
  bool finish_only_ = false;  // resumed at its last step: only the summary is missing
  Timing timing_;
  std::chrono::steady_clock::time_point start_, last_checkpoint_;
  RayPositions rays_;  // where the last step's rays went
};

// Seconds since t.
double Since(std::chrono::steady_clock::time_point t);

// The held-out certificate during training: a failure (say a singular metric
// at a point the search visits) is recorded, not fatal to the run.
nlohmann::json CertifyOrError(Components& c, int64_t points, const torch::TensorOptions& options,
                              const CertifyOptions& o);

}  // namespace lumpy
