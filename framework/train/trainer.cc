#include "train/trainer.h"

#include <cmath>
#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/atomic_file.h"
#include "core/input_file.h"
#include "lumpy/build_info.h"
#include "lumpy/status_macros.h"
#include "train/certify.h"
#include "train/checkpoint.h"
#include "train/progress.h"
#include "train/runtime.h"
#include "train/ranks.h"
#include "train/session.h"
#include "train/stop_signals.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

// How strongly a handler penalises: the second difference of its penalty at
// a unit violation, P(2) - 2 P(1) + P(0) (mu for lambda v + mu/2 v^2; 0 for
// a linear penalty). The penalty-coupled decay halves the learning rate when
// an update raises it: observed through penalty() itself, so no handler has
// to report it.
struct Curvature {
  double value = 0;  // P(2) - 2 P(1) + P(0)
  double noise = 0;  // its rounding error's bound (the terms cancel: lambda v)
};
Curvature PenaltyCurvature(ConstraintHandler& handler) {
  torch::NoGradGuard no_grad;
  auto p = handler.penalty(torch::tensor({0.0, 1.0, 2.0}, torch::kFloat64)).per_point.to(torch::kFloat64);
  const double p0 = p[0].item<double>(), p1 = p[1].item<double>(), p2 = p[2].item<double>();
  return {p2 - 2.0 * p1 + p0, 1e-12 * (std::abs(p0) + 2.0 * std::abs(p1) + std::abs(p2))};
}
bool Raised(const Curvature& before, const Curvature& after) {
  return after.value - before.value > before.noise + after.noise;
}

// The held-out certificate during training: a failure (say a singular metric

}  // namespace

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The held-out certificate during training: a failure (say a singular metric
// at a point the search visits) is recorded, not fatal to the run.
nlohmann::json CertifyOrError(Components& c, int64_t points, const torch::TensorOptions& options,
                              const CertifyOptions& o) {
  try {
    return Certify(c, points, options, o);
  } catch (const c10::Error& e) {
    return {{"error", e.what_without_backtrace()}};
  }
}

absl::Status CheckTrainable(const Experiment& exp, Components& c) {
  if (!c.model->parameters().empty() || !c.model->physical_parameters().empty()) {
    return absl::OkStatus();
  }
  for (auto& l : c.losses) {
    if (!l.term->physical_parameters().empty()) return absl::OkStatus();
    if (l.handler && !l.handler->parameters().empty()) return absl::OkStatus();
  }
  for (auto& d : c.domains) {
    if (!d.weighter->parameters().empty()) return absl::OkStatus();
  }
  return ConfigError(exp.model.location, "model",
                     absl::StrCat("nothing to train: the ", exp.model.entry->name,
                                  " metric has no parameters and no term declares a trainable "
                                  "physical parameter (e.g. loss.<efe>.omega_m_trainable = true)"));
}

Session::Session(const Experiment& exp, Components& c, const TrainOptions& options, Ranks* ranks)
    : exp_(exp),
      c_(c),
      options_(options),
      ranks_(ranks),
      schedule_(exp.optimizer),
      run_dir_(options.run_dir),
      checkpoints_(run_dir_ / "checkpoints") {}

void Session::BuildOptimizer() {
  MetricModel& model = *c_.model;
  // Parameter groups: the networks (metric, curricula) are clipped together;
  // learned handler parameters are not.
  network_ = model.parameters();
  for (auto& d : c_.domains) {
    for (auto& p : d.weighter->parameters()) network_.push_back(p);
  }
  for (auto& l : c_.losses) {
    if (l.handler) {
      for (auto& p : l.handler->parameters()) others_.push_back(p);
    }
  }
  physical_ = PhysicalScalars(c_);
  auto adam_options = [&](double factor) {
    return torch::optim::AdamOptions(schedule_.At(0) * factor)
        .betas({exp_.optimizer.GetDouble("beta1"), exp_.optimizer.GetDouble("beta2")})
        .eps(exp_.optimizer.GetDouble("eps"));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!network_.empty()) {
    groups.emplace_back(network_);
    group_factor_.push_back(1.0);
  }
  if (!others_.empty()) {
    groups.emplace_back(others_);
    group_factor_.push_back(1.0);
  }
  // Physical scalars (Omega_m, ...): one group each, learning rate x factor,
  // never clipped, projected into their bounds after every step.
  for (auto& p : physical_) {
    groups.emplace_back(std::vector<torch::Tensor>{p.parameter.value},
                        std::make_unique<torch::optim::AdamOptions>(adam_options(p.parameter.lr_factor)));
    group_factor_.push_back(p.parameter.lr_factor);
  }
  optimizer_ = std::make_unique<torch::optim::Adam>(groups, adam_options(1.0));
}

double Session::SetLearningRate(int64_t step) {
  const double lr = schedule_.At(step) * loop_.lr_scale;
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    static_cast<torch::optim::AdamOptions&>(groups[g].options()).lr(lr * group_factor_[g]);
  }
  return lr;
}


TrainingState Session::State() {
  return {exp_,      c_,        *optimizer_, physical_, best_step_.get(), evaluator_->uses_ray_points(),
          rays_,     loop_};
}

// latest.pt alone: the state after `step`, and the best single step's model
// (best_step.pt) if it changed.
absl::Status Session::SaveLatest(int64_t step) {
  const auto t = std::chrono::steady_clock::now();
  auto archive = WriteTrainingCheckpoint(State());
  absl::Status st = SaveArchiveAtomically(archive, checkpoints_ / "latest.pt", step);
  if (st.ok() && best_step_) st = best_step_->Write(c_);
  last_checkpoint_ = std::chrono::steady_clock::now();
  timing_.checkpoint += Since(t);
  return st;
}

// An interval's checkpoint: latest.pt, and best.pt (certified on the
// held-out grid if asked) when the interval's mean loss is the lowest so far.
absl::Status Session::SaveCheckpoint(int64_t step, bool certify) {
  const double window_mean =
      loop_.window_count ? loop_.window_sum / static_cast<double>(loop_.window_count) : INFINITY;
  loop_.window_sum = 0;
  loop_.window_count = 0;
  const bool new_best = window_mean < loop_.best_window;
  if (new_best) loop_.best_window = window_mean;
  absl::Status st = SaveLatest(step);
  if (st.ok() && new_best) {
    const auto t = std::chrono::steady_clock::now();
    st = CopyAtomically(checkpoints_ / "latest.pt", checkpoints_ / "best.pt");
    if (st.ok()) {
      best_checkpoint_ = {{"file", "checkpoints/best.pt"}, {"step", step}, {"interval_mean_loss", window_mean}};
    }
    const int64_t points = exp_.certify.GetInt("points");
    if (st.ok() && certify && exp_.certify.GetBool("on_best") && points > 0) {
      best_checkpoint_["held_out"] = CertifyOrError(c_, points, tensor_options_, CertifyOptionsOf(exp_));
    }
    timing_.checkpoint += Since(t);
  }
  return st;
}

// After `step` (not the last): the interval's checkpoint every
// checkpoint.every steps; in between, latest.pt alone once
// checkpoint.every_minutes have passed since the last checkpoint, so that a
// slow run never loses more than that. best.pt is left to the intervals:
// which checkpoint is best does not depend on the machine's speed, and a
// resumed run continues the same intervals.
absl::Status Session::MaybeCheckpoint(int64_t step) {
  const int64_t every = exp_.checkpoint.GetInt("every");
  if (every > 0 && (step + 1) % every == 0) return SaveCheckpoint(step);
  const double minutes = exp_.checkpoint.GetDouble("every_minutes");
  if (minutes > 0 && Since(last_checkpoint_) >= 60.0 * minutes) return SaveLatest(step);
  return absl::OkStatus();
}

// Resume: everything is checked before anything in the folder changes.
absl::Status Session::PrepareResume() {
  auto state = State();
  LUMPY_RETURN_IF_ERROR(ReadTrainingCheckpoint(checkpoints_ / "latest.pt", state));
  const int64_t steps = exp_.runtime.GetInt("steps");
  if (fs::exists(run_dir_ / "summary.json") || fs::is_symlink(run_dir_ / "summary.json")) {
    LUMPY_ASSIGN_OR_RETURN(auto prev, ReadInputFile(run_dir_ / "summary.json", InputKind::kRunFile, "run summary"));
    previous_summary_ = nlohmann::json::parse(prev, nullptr, false);
  }
  // A run killed after its last step's checkpoint but before its summary (or
  // whose summary says it failed there) is finished here: no step is run,
  // model.pt and summary.json are written as an unbroken run would have.
  const bool summarised = previous_summary_.is_object() && !previous_summary_.contains("error");
  finish_only_ = loop_.next_step == steps && !summarised;
  if (loop_.next_step >= steps && !finish_only_) {
    return absl::InvalidArgumentError(absl::StrCat(
        run_dir_.string(), ": the checkpoint is at step ", loop_.next_step,
        " and runtime.steps is ", steps, "; give a larger total with --steps"));
  }
  if (previous_summary_.is_object() && previous_summary_.contains("best_checkpoint")) {
    best_checkpoint_ = previous_summary_["best_checkpoint"];
  }
  if (!writer()) return absl::OkStatus();  // rank 0 keeps the folder
  LUMPY_ASSIGN_OR_RETURN(auto kept, metrics_->PrepareForResume(run_dir_ / "metrics.csv", loop_.next_step,
                                                               exp_.telemetry.GetInt("every"), !finish_only_));
  resumed_wall_time_ = kept.wall_time;
  if (!kept.last_row.empty()) last_row_ = kept.last_row;
  return absl::OkStatus();
}

absl::Status Session::OpenRunFolder() {
  std::error_code ec;
  fs::create_directories(checkpoints_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create run folder ", checkpoints_.string(), ": ", ec.message()));
  }
  const std::string header = absl::StrCat(
      "# Resolved experiment, written by lumpy ", LUMPY_VERSION_STRING, " from ", exp_.file.string(),
      ".\n# Every default is filled in; `lumpy run` this file to repeat the run.\n\n");
  if (auto st = WriteAtomically(run_dir_ / "experiment.toml", header + ToToml(exp_.resolved)); !st.ok()) {
    return st;
  }
  return metrics_->Open(run_dir_ / "metrics.csv", options_.resume);
}

absl::Status Session::Prepare() {
  LUMPY_RETURN_IF_ERROR(CheckTrainable(exp_, c_));
  tensor_options_ = RuntimeOptions(exp_);
  MetricModel& model = *c_.model;
  model.to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  model.train();
  for (auto& d : c_.domains) d.weighter->to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  BuildOptimizer();
  metrics_ = std::make_unique<MetricsLog>(MetricsLog::Columns(c_, physical_));
  evaluator_ = std::make_unique<StepLossEvaluator>(c_, metrics_->columns(), physical_, tensor_options_, ranks_);
  if (exp_.stopping.GetBool("best_step_checkpoint")) {
    best_step_ = std::make_unique<BestStep>(checkpoints_ / "best_step.pt", physical_, exp_.model.entry->name);
  }
  if (options_.resume) {
    LUMPY_RETURN_IF_ERROR(PrepareResume());
  } else if (!options_.init.empty()) {
    std::string note;
    if (auto st = LoadModelCheckpoint(model, options_.init, exp_.model.entry->name, {}, &note); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--init: ", st.message()));
    }
    if (!note.empty() && writer()) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  return writer() ? OpenRunFolder() : absl::OkStatus();
}

// Backward, clipping, the Adam step, the projection of the physical scalars
// and the handlers' updates.
void Session::Update(const StepLoss& s, int64_t step) {
  const auto t = std::chrono::steady_clock::now();
  optimizer_->zero_grad();
  if (s.loss.requires_grad()) s.loss.backward();
  timing_.backward += Since(t);
  if (ranks_) SumGradientsOverRanks();
  if (!network_.empty()) torch::nn::utils::clip_grad_norm_(network_, exp_.optimizer.GetDouble("clip_norm"));
  optimizer_->step();
  ProjectPhysicalScalars(physical_);
  const bool decay = exp_.optimizer.GetBool("penalty_decay");
  bool raised = false;
  for (size_t i = 0; i < c_.losses.size(); ++i) {
    ConstraintHandler* handler = c_.losses[i].handler.get();
    if (!handler) continue;
    const bool watched = decay && handler->parameters().empty();
    const Curvature before = watched ? PenaltyCurvature(*handler) : Curvature{};
    handler->update(s.handler_inputs[i], step);
    if (watched && Raised(before, PenaltyCurvature(*handler))) raised = true;
  }
  for (size_t di = 0; di < c_.domains.size(); ++di) {
    const CurriculumInput& in = s.curriculum_inputs[di];
    if (in.loss.defined()) c_.domains[di].weighter->update(in.points, in.loss, step);
  }
  if (raised) loop_.lr_scale *= 0.5;
}

// Each rank's gradients are those of its share of the loss: their sum is
// the loss's gradient, and every rank then takes the same step. A parameter
// no rank's loss reached keeps no gradient (Adam then leaves it, as in one
// process).
void Session::SumGradientsOverRanks() {
  std::vector<torch::Tensor> params;
  for (auto& group : optimizer_->param_groups()) {
    for (auto& p : group.params()) params.push_back(p);
  }
  std::vector<torch::Tensor> grads;
  auto reached = torch::zeros({static_cast<int64_t>(params.size())}, torch::kFloat64);
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].grad().defined()) reached[static_cast<int64_t>(i)] = 1.0;
    grads.push_back(params[i].grad().defined() ? params[i].grad() : torch::zeros_like(params[i]));
  }
  for (auto& g : grads) g = g.to(torch::kFloat64);  // one dtype for the one buffer
  grads.push_back(reached);
  ranks_->AllReduceSum(grads);
  for (size_t i = 0; i < params.size(); ++i) {
    if (grads.back()[static_cast<int64_t>(i)].item<double>() == 0) {
      params[i].mutable_grad() = torch::Tensor();
    } else {
      params[i].mutable_grad() = grads[i].to(params[i].scalar_type());
    }
  }
}

// Whether any rank received a stop signal: all stop after the same step.
int Session::SignalOnAnyRank(int mine) {
  if (!ranks_) return mine;
  std::vector<torch::Tensor> t = {torch::tensor({static_cast<double>(mine)}, torch::kFloat64)};
  ranks_->AllReduceSum(t);
  return t[0].item<double>() > 0 ? (mine ? mine : SIGTERM) : 0;
}

std::string Session::StopReason(int64_t step, double loss) const {
  const int64_t patience = exp_.stopping.Has("patience") ? exp_.stopping.GetInt("patience") : 0;
  if (loss <= exp_.stopping.GetDouble("target_loss")) {
    return absl::StrCat("reached the target loss ", Num(exp_.stopping.GetDouble("target_loss")), " at step ", step);
  }
  if (patience > 0 && step - loop_.best_step >= patience) {
    return absl::StrCat("no new best loss in ", patience, " steps (best ", Num(loop_.best_loss), " at step ",
                        loop_.best_step, ")");
  }
  return "";
}

absl::Status Session::Run() {
  std::unique_ptr<RunFolderLock> lock;
  if (writer()) {
    LUMPY_ASSIGN_OR_RETURN(lock, RunFolderLock::Acquire(run_dir_));
    if (!options_.resume && fs::exists(run_dir_ / "metrics.csv")) {
      return absl::InvalidArgumentError(absl::StrCat(
          run_dir_.string(), ": already holds a run; choose another --out (runs are never overwritten)"));
    }
  }
  LUMPY_RETURN_IF_ERROR(Prepare());
  try {
    return Loop();
  } catch (const std::exception& e) {
    if (!ranks_) throw;
    // A collective failed (c10d or Gloo): another rank is gone, and its own
    // output says why.
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    return absl::UnavailableError(absl::StrCat("rank ", ranks_->rank(), " of ", ranks_->size(),
                                               ": lost the other ranks (", c10 ? c10->what_without_backtrace() : e.what(),
                                               "); lumpy resume continues from ", (checkpoints_ / "latest.pt").string()));
  }
}

absl::Status Session::Loop() {
  const int64_t steps = exp_.runtime.GetInt("steps");
  const int64_t every = exp_.telemetry.GetInt("every");
  const bool best_after_update = exp_.stopping.GetString("best_step_model") == "after_update";
  first_step_ = loop_.next_step;
  Progress progress(steps, writer() && options_.progress && exp_.telemetry.GetBool("progress"), first_step_);
  start_ = last_checkpoint_ = std::chrono::steady_clock::now();
  StopSignals signals;
  Ending ending;
  for (int64_t step = first_step_; step < steps; ++step) {
    if (const int sig = SignalOnAnyRank(signals.received())) {
      ending.interrupted = absl::StrCat("interrupted by signal ", sig, " after step ", step,
                                        " of ", steps, "; the run folder holds everything so far");
      break;
    }
    const auto t_step = std::chrono::steady_clock::now();
    const double step_lr = SetLearningRate(step);
    auto s = evaluator_->Compute(step, &rays_);
    timing_.loss += Since(t_step);
    if (!s.ok()) {
      ending.failure = s.status();
      break;
    }
    const double loss = s->row[1];
    const bool new_best = loss < loop_.best_loss;
    if (new_best) {
      loop_.best_loss = loss;
      loop_.best_step = step;
      if (best_step_ && !best_after_update) best_step_->Take(c_, step, loss);
    }
    loop_.window_sum += loss;
    ++loop_.window_count;
    Update(*s, step);
    if (new_best && best_step_ && best_after_update) best_step_->Take(c_, step, loss);

    s->row.push_back(step_lr);
    s->row.push_back(resumed_wall_time_ + Since(start_));
    last_row_ = s->row;
    loop_.next_step = step + 1;
    if (writer() && (step % every == 0 || step + 1 == steps)) {
      if (auto st = metrics_->Write(s->row); !st.ok()) {
        ending.failure = st;
        break;
      }
    }
    timing_.step += Since(t_step);
    progress.Update(loop_.next_step, loss);

    ending.stop_reason = StopReason(step, loss);
    const bool last = step + 1 == steps || !ending.stop_reason.empty();
    if (auto st = last || !writer() ? absl::OkStatus() : MaybeCheckpoint(step); !st.ok()) {
      ending.failure = st;
      break;
    }
    FaultPoint("kill-after-step", step);
    if (!ending.stop_reason.empty()) break;
  }
  progress.Finish();
  return Finish(ending);
}

absl::Status Train(const Experiment& exp, Components& c, const TrainOptions& options) {
  LUMPY_ASSIGN_OR_RETURN(auto ranks, Ranks::FromEnvironment(options.run_dir));
  Session session(exp, c, options, ranks.get());
  return session.Run();
}

}  // namespace lumpy
