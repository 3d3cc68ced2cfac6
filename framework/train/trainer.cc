#include "train/trainer.h"

#include "lumpy/module_state.h"

#include "core/input_file.h"
#include "core/out_of_memory.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/threads.h"
#include "lumpy/build_info.h"
#include "physics/probe.h"
#include "train/certify.h"
#include "train/checkpoint.h"
#include "physics/point_set_context.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/state.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

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
// at a point the search visits) is recorded, not fatal to the run.
nlohmann::json CertifyOrError(Components& c, int64_t points, const torch::TensorOptions& options,
                              const CertifyOptions& o) {
  try {
    return Certify(c, points, options, o);
  } catch (const c10::Error& e) {
    return {{"error", e.what_without_backtrace()}};
  }
}

torch::Dtype ParseDtype(const std::string& name) {
  return name == "float32" ? torch::kFloat32 : torch::kFloat64;
}

// Ctrl-C / SIGTERM: finish the current step, write the summary and the model,
// and stop. A second signal ends the process at once.
std::atomic<int> g_stop_signal{0};
extern "C" void OnStopSignal(int sig) {
  g_stop_signal = sig;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    old_int_ = std::signal(SIGINT, OnStopSignal);
    old_term_ = std::signal(SIGTERM, OnStopSignal);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  int received() const { return g_stop_signal; }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

void ApplyRuntime(const Experiment& exp) {
  ConfigureThreads(exp.runtime.GetInt("threads"));
  torch::set_default_dtype(
      caffe2::TypeMeta::fromScalarType(ParseDtype(exp.runtime.GetString("dtype"))));
  torch::manual_seed(static_cast<uint64_t>(exp.runtime.GetInt("seed")));
}

torch::TensorOptions RuntimeOptions(const Experiment& exp) {
  return torch::TensorOptions()
      .dtype(ParseDtype(exp.runtime.GetString("dtype")))
      .device(torch::Device(exp.runtime.GetString("device")));
}

torch::Tensor SamplePoints(const DomainSpec& domain, const torch::TensorOptions& options,
                           const RayPositions& rays) {
  std::vector<torch::Tensor> parts;
  for (const auto& s : domain.strata) {
    auto u = torch::rand({s.count, 4}, options);
    auto lo = torch::tensor({s.t_min, domain.x[0], domain.y[0], domain.z[0]}, options);
    auto hi = torch::tensor({s.t_max, domain.x[1], domain.y[1], domain.z[1]}, options);
    parts.push_back(lo + (hi - lo) * u);
  }
  int64_t left = domain.ray_points;
  if (left > 0 && rays.bad.defined()) {
    parts.push_back(rays.bad.narrow(0, 0, std::min(left, rays.bad.size(0))).to(options));
    left -= parts.back().size(0);
  }
  if (left > 0 && rays.segments.defined() && rays.segments.size(0) > 0) {
    const auto cpu = torch::TensorOptions().dtype(torch::kFloat64);
    auto pick = rays.segments.index_select(0, torch::randint(rays.segments.size(0), {left}, torch::kInt64));
    auto u = torch::rand({left, 1}, cpu);
    parts.push_back((pick.narrow(1, 0, 4) + u * (pick.narrow(1, 4, 4) - pick.narrow(1, 0, 4))).to(options));
  } else if (left > 0) {
    parts.push_back(torch::tensor({1.0, 0.0, 0.0, 0.0}, options).expand({left, 4}).clone());
  }
  return torch::cat(parts, 0);
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

absl::StatusOr<HandledTerm> ApplyHandler(ConstraintHandler& handler, const torch::Tensor& values,
                                         bool on_mean) {
  HandledTerm out;
  const int64_t n = values.size(0);
  auto input = on_mean ? values.mean().reshape({1}) : values;
  Penalty p = handler.penalty(input);
  if (!p.per_point.defined() || p.per_point.sizes() != input.sizes() || !p.total.defined() ||
      p.total.numel() != 1) {
    return absl::InternalError(absl::StrCat(
        "returned a penalty of shape ", p.per_point.defined() ? c10::str(p.per_point.sizes()) : "undefined",
        " (total ", p.total.defined() ? c10::str(p.total.sizes()) : "undefined", ") for an input of shape ",
        c10::str(input.sizes()), "; it must return one value per input value and a scalar total"));
  }
  {
    // The engine reduces per_point (through the curricula); summaries and
    // the trap's telemetry read total: they must agree.
    const double total = p.total.item<double>(), mean = p.per_point.mean().item<double>();
    if (std::isfinite(total) && std::isfinite(mean) &&
        std::abs(total - mean) > 1e-4 * std::max(1.0, std::abs(mean))) {
      return absl::InternalError(absl::StrCat("returned a total of ", total, " but its per-point values average ",
                                              mean, "; Penalty::total must be mean(per_point)"));
    }
  }
  out.input = input.detach();
  out.penalty.total = p.total.reshape({});
  // On the mean: the penalty of the mean as one value per point, so that a
  // uniform curriculum gives back exactly the penalty.
  out.penalty.per_point = on_mean ? out.penalty.total.expand({n}) : p.per_point;
  return out;
}

namespace {

// What one term contributes to a step: its metrics.csv values, and its share
// of the loss (per point on its domain, or direct for a dataset term or a
// handler acting on the term's mean), plus what its handler's update needs.
struct TermShare {
  std::vector<double> row;
  torch::Tensor per_point;     // [B] on the term's domain, or undefined
  torch::Tensor direct;        // scalar, or undefined
  torch::Tensor handler_input; // what the handler saw (detached for update), or undefined
};

// One step's loss and its metrics row.
struct StepLoss {
  torch::Tensor loss;
  std::vector<double> row;
  std::vector<torch::Tensor> handler_inputs;  // per loss term
};

// Everything one training run holds: the parameter groups, the optimizer,
// the metrics columns and the loop's bookkeeping, with the checkpoint that
// captures all of it. Run() is set-up, the loop, and the finish; each step is
// ComputeLoss (the loss and its row) then Update (the optimizer step).
class Session {
 public:
  Session(const Experiment& exp, Components& c, const TrainOptions& options)
      : exp_(exp),
        c_(c),
        options_(options),
        schedule_(exp.optimizer),
        run_dir_(options.run_dir),
        checkpoints_(run_dir_ / "checkpoints") {}

  absl::Status Run();

 private:
  // The loop's bookkeeping; all of it goes into checkpoints.
  struct Loop {
    int64_t next_step = 0;
    double best_loss = INFINITY;
    int64_t best_step = -1;
    double lr_scale = 1.0;  // penalty-coupled decay
    double window_sum = 0;  // loss summed since the last checkpoint
    int64_t window_count = 0;
    double best_window = INFINITY;  // lowest interval mean among checkpoints
  };
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
  std::vector<std::string> Columns() const;
  absl::Status PrepareResume();
  absl::Status OpenRunFolder();
  // The step.
  absl::StatusOr<StepLoss> ComputeLoss(int64_t step);
  absl::StatusOr<TermShare> EvaluateTerm(const LossComponent& l, StepContext& ctx, int64_t step, size_t column);
  absl::Status AppendTelemetry(const std::vector<std::pair<std::string, double>>& telemetry,
                               const std::string& prefix, const std::string& who, size_t column,
                               std::vector<double>* row) const;
  void WarnOnJump(size_t term, double value, int64_t step);
  void Update(const StepLoss& s, int64_t step);
  double SetLearningRate(int64_t step);
  absl::Status WriteRow(const std::vector<double>& row);
  std::string StopReason(int64_t step, double loss) const;
  // Checkpoints.
  torch::serialize::OutputArchive Checkpoint() const;
  // certify: certify a new best checkpoint (not while stopping on a signal:
  // Slurm's warning leaves little time).
  absl::Status SaveCheckpoint(int64_t step, bool certify = true);
  absl::Status LoadCheckpoint(const fs::path& file);
  absl::Status LoadPluginStates(torch::serialize::InputArchive& weighters, torch::serialize::InputArchive& handlers);
  absl::Status PrepareMetricsForResume(const fs::path& file);
  // The finish.
  absl::Status Finish(const Ending& ending);
  nlohmann::json Summary(const Ending& ending) const;
  nlohmann::json HeldOut(nlohmann::json* summary);
  nlohmann::json Observer() const;

  const Experiment& exp_;
  Components& c_;
  const TrainOptions& options_;
  LearningRateSchedule schedule_;
  const fs::path run_dir_, checkpoints_;
  torch::TensorOptions tensor_options_;
  std::vector<torch::Tensor> network_, others_;
  std::vector<PhysicalScalarSlot> physical_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<double> group_factor_;  // per optimizer group: lr factor over the network's
  std::vector<std::string> columns_;
  std::vector<int> domain_of_;  // per loss term: its domain's index, -1 for a dataset term
  std::vector<double> last_value_;  // per loss term: its value at the previous step
  std::vector<char> warned_;        // per loss term: a jump was reported
  std::unique_ptr<BestStep> best_step_;
  std::ofstream metrics_;
  Loop loop_;
  int64_t first_step_ = 0;
  double resumed_wall_time_ = 0;  // wall time of the last kept metrics row
  nlohmann::json previous_summary_;
  nlohmann::json best_checkpoint_;
  std::vector<double> last_row_;
  bool finish_only_ = false;  // resumed at its last step: only the summary is missing
  int64_t points_per_step_ = 0;
  Timing timing_;
  std::chrono::steady_clock::time_point start_;
  bool uses_ray_points_ = false;  // some domain draws ray_points
  RayPositions rays_;             // where the last step's rays went
};

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

std::vector<std::string> Session::Columns() const {
  std::vector<std::string> columns = {"step", "loss"};
  for (const auto& l : c_.losses) {
    columns.push_back(l.spec->name);
    for (const auto& [k, v] : l.term->telemetry()) columns.push_back(l.spec->name + "." + k);
    if (l.handler) {
      columns.push_back(l.spec->name + ".penalty");
      for (const auto& [k, v] : l.handler->telemetry()) columns.push_back(l.spec->name + "." + k);
    }
  }
  for (const auto& d : c_.domains) {
    for (const auto& [k, v] : d.weighter->telemetry()) columns.push_back(d.spec->name + "." + k);
  }
  for (const auto& p : physical_) columns.push_back(p.column);
  columns.insert(columns.end(), {"lr", "wall_time_s"});
  return columns;
}

double Session::SetLearningRate(int64_t step) {
  const double lr = schedule_.At(step) * loop_.lr_scale;
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    static_cast<torch::optim::AdamOptions&>(groups[g].options()).lr(lr * group_factor_[g]);
  }
  return lr;
}

// The archive: format, fingerprint, loop, RNG, model, optimizer, weighters,
// handlers, physical scalars.
torch::serialize::OutputArchive Session::Checkpoint() const {
  torch::serialize::OutputArchive a;
  a.write("format", c10::IValue(std::string("lumpy-checkpoint-1")));
  a.write("fingerprint", c10::IValue(ExperimentFingerprint(exp_)));
  auto f64 = [](double v) { return torch::tensor(v, torch::kFloat64); };
  auto i64 = [](int64_t v) { return torch::tensor(v, torch::kInt64); };
  // Archive keys are paths split at '.', so scalars are named with '_'.
  a.write("loop_next_step", i64(loop_.next_step));
  a.write("loop_best_loss", f64(loop_.best_loss));
  a.write("loop_best_step", i64(loop_.best_step));
  a.write("loop_lr_scale", f64(loop_.lr_scale));
  a.write("loop_window_sum", f64(loop_.window_sum));
  a.write("loop_window_count", i64(loop_.window_count));
  a.write("loop_best_window", f64(loop_.best_window));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    a.write("rng", gen.get_state());
  }
  torch::serialize::OutputArchive model;
  SaveModuleState(*c_.model, model);
  a.write("model", model);
  WriteModelKind(a, exp_.model.entry->name);
  torch::serialize::OutputArchive optimizer;
  optimizer_->save(optimizer);
  a.write("optimizer", optimizer);
  auto weighters = WeightersArchive(c_);
  a.write("weighters", weighters);
  torch::serialize::OutputArchive handlers;
  for (const auto& l : c_.losses) {
    if (!l.handler) continue;
    torch::serialize::OutputArchive h;
    SaveModuleState(*l.handler, h);
    handlers.write(l.spec->name, h);
  }
  a.write("handlers", handlers);
  WritePhysicalScalars(physical_, a);
  if (best_step_) best_step_->Save(a);
  if (uses_ray_points_) {
    const auto none = torch::zeros({0, 4}, torch::kFloat64);
    a.write("ray_segments", rays_.segments.defined() ? rays_.segments : torch::zeros({0, 8}, torch::kFloat64));
    a.write("ray_bad", rays_.bad.defined() ? rays_.bad : none);
  }
  return a;
}

// A checkpoint of the state after `step`: latest.pt, and best.pt (certified
// on the held-out grid if asked) when its interval's mean loss is the lowest
// so far; the best single step's model (best_step.pt) if it changed.
absl::Status Session::SaveCheckpoint(int64_t step, bool certify) {
  const auto t = std::chrono::steady_clock::now();
  const double window_mean =
      loop_.window_count ? loop_.window_sum / static_cast<double>(loop_.window_count) : INFINITY;
  loop_.window_sum = 0;
  loop_.window_count = 0;
  const bool new_best = window_mean < loop_.best_window;
  if (new_best) loop_.best_window = window_mean;
  const fs::path latest = checkpoints_ / "latest.pt", best = checkpoints_ / "best.pt";
  auto archive = Checkpoint();
  absl::Status st = SaveArchiveAtomically(archive, latest, step);
  if (st.ok() && new_best) {
    st = CopyAtomically(latest, best);
    if (st.ok()) {
      best_checkpoint_ = {{"file", "checkpoints/best.pt"}, {"step", step}, {"interval_mean_loss", window_mean}};
    }
    const int64_t points = exp_.certify.GetInt("points");
    if (st.ok() && certify && exp_.certify.GetBool("on_best") && points > 0) {
      best_checkpoint_["held_out"] = CertifyOrError(c_, points, tensor_options_, CertifyOptionsOf(exp_));
    }
  }
  if (st.ok() && best_step_) st = best_step_->Write(c_);
  timing_.checkpoint += Since(t);
  return st;
}

absl::Status Session::LoadCheckpoint(const fs::path& file) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", what));
  };
  if (!fs::exists(file)) {
    return bad(absl::StrCat("no checkpoint to resume from (the run wrote none: it may have "
                            "failed before its first one; checkpoint.every = ",
                            exp_.checkpoint.GetInt("every"), ")"));
  }
  if (auto st = CheckInputFile(file, InputKind::kCheckpoint, "checkpoint"); !st.ok()) {
    return absl::InvalidArgumentError(st.message());
  }
  torch::serialize::InputArchive a;
  try {
    a.load_from(file.string());
  } catch (const c10::Error& e) {
    return bad(absl::StrCat("truncated or corrupt checkpoint (", e.what_without_backtrace(),
                            "); checkpoints/best.pt may still load: copy it over latest.pt to "
                            "resume from there"));
  }
  try {
    c10::IValue format, fingerprint;
    if (!a.try_read("format", format) || !format.isString() ||
        format.toStringRef() != "lumpy-checkpoint-1") {
      return bad("not a lumpy checkpoint (no format record lumpy-checkpoint-1)");
    }
    a.read("fingerprint", fingerprint);
    if (auto diff = FirstDifference(fingerprint.toStringRef(), ExperimentFingerprint(exp_))) {
      return bad(absl::StrCat("from an incompatible experiment: the checkpoint's experiment has ", *diff));
    }
    // A fresh tensor per read: reading into a defined tensor reuses its dtype.
    auto read_i = [&](const char* k) { torch::Tensor t; a.read(k, t); return t.item<int64_t>(); };
    auto read_d = [&](const char* k) { torch::Tensor t; a.read(k, t); return t.item<double>(); };
    Loop loop;
    loop.next_step = read_i("loop_next_step");
    loop.best_loss = read_d("loop_best_loss");
    loop.best_step = read_i("loop_best_step");
    loop.lr_scale = read_d("loop_lr_scale");
    loop.window_sum = read_d("loop_window_sum");
    loop.window_count = read_i("loop_window_count");
    loop.best_window = read_d("loop_best_window");
    torch::Tensor rng;
    a.read("rng", rng);
    torch::serialize::InputArchive model, optimizer, weighters, handlers;
    a.read("model", model);
    if (auto st = LoadModuleState(model, *c_.model, "the model"); !st.ok()) return bad(std::string(st.message()));
    a.read("optimizer", optimizer);
    optimizer_->load(optimizer);
    a.read("weighters", weighters);
    a.read("handlers", handlers);
    if (auto st = LoadPluginStates(weighters, handlers); !st.ok()) return bad(std::string(st.message()));
    if (auto st = ReadPhysicalScalars(a, physical_); !st.ok()) return bad(std::string(st.message()));
    if (best_step_) {
      if (auto st = best_step_->Load(a, c_); !st.ok()) return bad(std::string(st.message()));
    }
    if (uses_ray_points_) {
      auto read_rows = [&](const char* k) {
        torch::Tensor t;
        a.read(k, t);
        return t.size(0) > 0 ? t : torch::Tensor();
      };
      rays_ = {read_rows("ray_segments"), read_rows("ray_bad")};
    }
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
    loop_ = loop;
  } catch (const c10::Error& e) {
    return bad(absl::StrCat("does not fit this experiment (", e.what_without_backtrace(), ")"));
  }
  return absl::OkStatus();
}

// Every curriculum's and every handler's state from a checkpoint's
// "weighters" and "handlers" archives.
absl::Status Session::LoadPluginStates(torch::serialize::InputArchive& weighters,
                                       torch::serialize::InputArchive& handlers) {
  // The plugin's own archive under `name` in `parent`.
  auto load = [](torch::serialize::InputArchive& parent, const std::string& name, torch::nn::Module& plugin,
                 const std::string& what) -> absl::Status {
    torch::serialize::InputArchive own;
    if (!parent.try_read(name, own)) return absl::InvalidArgumentError(absl::StrCat(what, ": not saved"));
    return LoadModuleState(own, plugin, what);
  };
  for (const auto& d : c_.domains) {
    LUMPY_RETURN_IF_ERROR(load(weighters, d.spec->name, *d.weighter, "the curriculum of domains." + d.spec->name));
  }
  for (const auto& l : c_.losses) {
    if (l.handler) LUMPY_RETURN_IF_ERROR(load(handlers, l.spec->name, *l.handler, "the handler of loss." + l.spec->name));
  }
  return absl::OkStatus();
}

// Keeps metrics.csv's header and the rows of the steps before the
// checkpoint; the resumed run writes the rest again.
absl::Status Session::PrepareMetricsForResume(const fs::path& file) {
  if (auto st = CheckInputFile(file, InputKind::kMetrics, "metrics table"); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(st.message(), "; cannot resume"));
  }
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": missing; cannot resume"));
  std::string header, line, kept;
  std::getline(in, header);
  const std::string expected = absl::StrJoin(columns_, ",");
  if (header != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": its columns do not match this experiment's; expected \"", expected,
        "\", found \"", header, "\""));
  }
  const auto fields = static_cast<int64_t>(columns_.size());
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::count(line.begin(), line.end(), ',') + 1 != fields) {
      std::fprintf(stderr, "warning: %s: dropped a row with %lld of its %lld fields (a write that did not finish)\n",
                   file.string().c_str(), static_cast<long long>(std::count(line.begin(), line.end(), ',') + 1),
                   static_cast<long long>(fields));
      continue;
    }
    const int64_t step = std::atoll(line.substr(0, line.find(',')).c_str());
    if (step < loop_.next_step) {
      absl::StrAppend(&kept, line, "\n");
      resumed_wall_time_ = std::atof(line.substr(line.rfind(',') + 1).c_str());
      if (step + 1 == loop_.next_step) {  // the checkpoint's own row: the summary's "final"
        last_row_.clear();
        for (absl::string_view field : absl::StrSplit(line, ',')) {
          last_row_.push_back(std::atof(std::string(field).c_str()));
        }
      }
    }
  }
  return WriteAtomically(file, absl::StrCat(header, "\n", kept));
}

// Resume: everything is checked before anything in the folder changes.
absl::Status Session::PrepareResume() {
  LUMPY_RETURN_IF_ERROR(LoadCheckpoint(checkpoints_ / "latest.pt"));
  const int64_t steps = exp_.runtime.GetInt("steps");
  std::ifstream prev(run_dir_ / "summary.json");
  if (prev) previous_summary_ = nlohmann::json::parse(prev, nullptr, false);
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
  return PrepareMetricsForResume(run_dir_ / "metrics.csv");
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
  // metrics.csv: one row per logged step, flushed at once.
  metrics_.open(run_dir_ / "metrics.csv", options_.resume ? std::ios::app : std::ios::trunc);
  if (!metrics_) return absl::InternalError("cannot write metrics.csv in " + run_dir_.string());
  if (!options_.resume) metrics_ << absl::StrJoin(columns_, ",") << "\n" << std::flush;
  return absl::OkStatus();
}

absl::Status Session::Prepare() {
  LUMPY_RETURN_IF_ERROR(CheckTrainable(exp_, c_));
  tensor_options_ = RuntimeOptions(exp_);
  MetricModel& model = *c_.model;
  model.to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  model.train();
  for (auto& d : c_.domains) d.weighter->to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  BuildOptimizer();
  columns_ = Columns();
  domain_of_.assign(c_.losses.size(), -1);
  last_value_.assign(c_.losses.size(), NAN);
  warned_.assign(c_.losses.size(), 0);
  for (const auto& d : c_.domains) uses_ray_points_ |= d.spec->ray_points > 0;
  for (size_t i = 0; i < c_.losses.size(); ++i) {
    for (size_t d = 0; d < c_.domains.size(); ++d) {
      if (c_.domains[d].spec->name == c_.losses[i].spec->domain) domain_of_[i] = static_cast<int>(d);
    }
  }
  if (exp_.stopping.GetBool("best_step_checkpoint")) {
    best_step_ = std::make_unique<BestStep>(checkpoints_ / "best_step.pt", physical_, exp_.model.entry->name);
  }
  if (options_.resume) {
    LUMPY_RETURN_IF_ERROR(PrepareResume());
  }
  return OpenRunFolder();
}

// One term: evaluate it, check what it returned, and let its handler (a
// constraint's, or an objective's weighting) turn it into its share.
// Appends a plugin's telemetry values to `row`, whose first value goes in
// metrics.csv column `column`, checking that the names are the ones the
// columns were made from (the file is written by position: a plugin whose
// list changed would shift every later column).
absl::Status Session::AppendTelemetry(const std::vector<std::pair<std::string, double>>& telemetry,
                                      const std::string& prefix, const std::string& who, size_t column,
                                      std::vector<double>* row) const {
  for (const auto& [k, v] : telemetry) {
    const size_t at = column + row->size();
    const std::string name = absl::StrCat(prefix, ".", k);
    if (at + 2 >= columns_.size() || columns_[at] != name) {
      return absl::InternalError(absl::StrCat(
          who, " broke its contract: its telemetry changed after the first step (metrics.csv column ", at + 1, " is \"",
          at + 2 < columns_.size() ? columns_[at] : std::string("lr"), "\", it now reports \"", name,
          "\"); a plugin must report the same names, in the same order, every step"));
    }
    row->push_back(v);
  }
  return absl::OkStatus();
}

absl::StatusOr<TermShare> Session::EvaluateTerm(const LossComponent& l, StepContext& ctx, int64_t step,
                                                size_t column) {
  const LossSpec& spec = *l.spec;
  auto failed = [&](const std::string& what) {
    return absl::AbortedError(absl::StrCat("step ", step, ": loss term \"", spec.name, "\" (",
                                           spec.term.entry->name, ") ", what));
  };
  LossValue value;
  try {
    value = l.term->evaluate(ctx);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (IsOutOfMemory(what)) {
      return failed(absl::StrCat("ran out of memory (", AllocatorDetail(what), "); ", OutOfMemoryAdvice()));
    }
    return failed(absl::StrCat("failed: ", what));
  }
  const int64_t n = ctx.points().size(0);
  const bool dataset = spec.kind == LossKind::kDataset;
  if (dataset && value.per_point.defined()) {
    return absl::InternalError(absl::StrCat("loss term \"", spec.name, "\" (", spec.term.entry->name,
                                            ") is registered as a dataset term but returned per-point values"));
  }
  if (!dataset && (!value.per_point.defined() || value.per_point.dim() != 1 || value.per_point.size(0) != n)) {
    return absl::InternalError(absl::StrCat(
        "loss term \"", spec.name, "\" (", spec.term.entry->name, ") returned per-point values of shape ",
        value.per_point.defined() ? c10::str(value.per_point.sizes()) : "undefined", ", expected [", n, "]"));
  }
  TermShare share;
  double term_value = value.value.item<double>();
  share.row.push_back(term_value);
  const std::string who_term = absl::StrCat("loss term \"", spec.name, "\" (", spec.term.entry->name, ")");
  LUMPY_RETURN_IF_ERROR(AppendTelemetry(l.term->telemetry(), spec.name, who_term, column, &share.row));
  // What the handler or the loss sees: a constraint's violation as it is; an
  // objective or dataset term times its weight.
  torch::Tensor input = dataset ? spec.weight * value.value.reshape({1})
                        : spec.kind == LossKind::kConstraint ? value.per_point
                                                             : spec.weight * value.per_point;
  if (l.handler) {
    auto applied = ApplyHandler(*l.handler, input, dataset || spec.handler_on_mean);
    if (!applied.ok()) {
      return absl::InternalError(absl::StrCat("the handler of loss term \"", spec.name, "\" (",
                                              spec.handler.entry->name, ") ", applied.status().message()));
    }
    const double penalty = applied->penalty.total.item<double>();
    share.row.push_back(penalty);
    const std::string who = absl::StrCat("the handler of loss term \"", spec.name, "\" (", spec.handler.entry->name, ")");
    LUMPY_RETURN_IF_ERROR(AppendTelemetry(l.handler->telemetry(), spec.name, who, column, &share.row));
    if (std::isfinite(term_value) && !std::isfinite(penalty)) term_value = penalty;
    share.handler_input = applied->input;
    if (dataset) {
      share.direct = applied->penalty.total;
    } else {
      share.per_point = applied->penalty.per_point;
    }
  } else if (dataset) {
    share.direct = input.reshape({});
  } else {
    share.per_point = input;
  }
  if (!std::isfinite(term_value)) {
    return absl::AbortedError(absl::StrCat("step ", step, ": loss term \"", spec.name, "\" is ", term_value, "; stopping"));
  }
  return share;
}

absl::StatusOr<StepLoss> Session::ComputeLoss(int64_t step) {
  MetricModel& model = *c_.model;
  std::unique_ptr<Geometry> observer;
  std::vector<std::unique_ptr<PointSetContext>> contexts;
  for (const auto& d : c_.domains) {
    contexts.push_back(std::make_unique<PointSetContext>(
        model, SamplePoints(*d.spec, tensor_options_, rays_), &observer, step));
  }
  // The rays this step traces feed the next step's ray_points.
  std::optional<RayStateRecorder> recorder;
  if (uses_ray_points_) recorder.emplace();
  PointSetContext dataset_context(model, torch::zeros({0, 4}, tensor_options_), &observer, step);
  points_per_step_ = 0;
  for (auto& ctx : contexts) points_per_step_ += ctx->points().size(0);

  StepLoss out;
  out.row = {static_cast<double>(step), 0.0};
  out.handler_inputs.resize(c_.losses.size());
  std::vector<torch::Tensor> sums(c_.domains.size());
  auto add = [](torch::Tensor& sum, const torch::Tensor& x) { sum = sum.defined() ? sum + x : x; };
  torch::Tensor direct;  // dataset terms and the like, past the curricula
  for (size_t i = 0; i < c_.losses.size(); ++i) {
    const int di = domain_of_[i];
    LUMPY_ASSIGN_OR_RETURN(auto share, EvaluateTerm(c_.losses[i], di >= 0 ? *contexts[di] : dataset_context, step, out.row.size()));
    out.row.insert(out.row.end(), share.row.begin(), share.row.end());
    WarnOnJump(i, share.row.front(), step);
    out.handler_inputs[i] = share.handler_input;
    if (share.per_point.defined()) add(sums[di], share.per_point);
    if (share.direct.defined()) add(direct, share.direct);
  }
  if (recorder) {
    rays_ = recorder->positions();
    // Kept (and checkpointed) no more than the draws need: 64 per ray point.
    int64_t need = 0;
    for (const auto& d : c_.domains) need = std::max(need, 64 * d.spec->ray_points);
    if (rays_.segments.defined() && rays_.segments.size(0) > need) {
      rays_.segments = rays_.segments.index_select(0, torch::randperm(rays_.segments.size(0), torch::kInt64).narrow(0, 0, need));
    }
  }
  out.loss = direct;
  for (size_t di = 0; di < c_.domains.size(); ++di) {
    if (!sums[di].defined()) continue;
    add(out.loss, c_.domains[di].weighter->reduce(contexts[di]->points(), sums[di]));
  }
  for (const auto& d : c_.domains) {
    std::vector<double> values;
    const std::string who = absl::StrCat("the curriculum of domain \"", d.spec->name, "\" (", d.spec->curriculum.entry->name, ")");
    LUMPY_RETURN_IF_ERROR(AppendTelemetry(d.weighter->telemetry(), d.spec->name, who, out.row.size(), &values));
    out.row.insert(out.row.end(), values.begin(), values.end());
  }
  // Physical scalars as this step's loss used them.
  for (const auto& p : physical_) out.row.push_back(p.parameter.value.item<double>());
  if (out.row.size() + 2 != columns_.size()) {
    return absl::InternalError(absl::StrCat("step ", step, ": the row has ", out.row.size() + 2, " values for ",
                                            columns_.size(), " metrics.csv columns: a plugin reports fewer telemetry "
                                            "values than at the first step; a plugin must report the same names every step"));
  }
  out.row[1] = out.loss.item<double>();
  if (!std::isfinite(out.row[1])) {
    return absl::AbortedError(absl::StrCat("step ", step, ": the total loss is ", out.row[1], "; stopping"));
  }
  return out;
}

// A dataset term whose value jumps a hundredfold from one step to the next
// (a ray that stopped on a bad state, supernovae suddenly unreached) is
// reported once, with the step and what the term's telemetry says.
void Session::WarnOnJump(size_t term, double value, int64_t step) {
  const auto& l = c_.losses[term];
  const double last = last_value_[term];
  last_value_[term] = value;
  if (l.spec->kind != LossKind::kDataset || warned_[term] || !(last > 0) || !(value > 100 * last)) return;
  warned_[term] = 1;
  std::string why;
  for (const auto& [k, v] : l.term->telemetry()) {
    if (v != 0 && std::isfinite(v)) absl::StrAppend(&why, why.empty() ? "" : ", ", k, " = ", Num(v));
  }
  std::fprintf(stderr, "\nwarning: step %lld: loss term \"%s\" jumped from %.4g to %.4g (x%.3g)%s%s\n",
               static_cast<long long>(step), l.spec->name.c_str(), last, value, value / last,
               why.empty() ? "" : "; its telemetry: ", why.c_str());
}

// Backward, clipping, the Adam step, the projection of the physical scalars
// and the handlers' updates.
void Session::Update(const StepLoss& s, int64_t step) {
  const auto t = std::chrono::steady_clock::now();
  optimizer_->zero_grad();
  s.loss.backward();
  timing_.backward += Since(t);
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
  if (raised) loop_.lr_scale *= 0.5;
}

absl::Status Session::WriteRow(const std::vector<double>& row) {
  errno = 0;
  for (size_t i = 0; i < row.size(); ++i) {
    metrics_ << (i ? "," : "") << (i == 0 ? std::to_string(static_cast<int64_t>(row[0])) : Num(row[i]));
  }
  metrics_ << "\n" << std::flush;
  if (metrics_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("cannot write ", (run_dir_ / "metrics.csv").string(), " (",
                                             errno ? std::strerror(errno) : "write failed",
                                             "); rows after the last checkpoint are dropped on resume"));
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
  LUMPY_ASSIGN_OR_RETURN(auto lock, RunFolderLock::Acquire(run_dir_));
  if (!options_.resume && fs::exists(run_dir_ / "metrics.csv")) {
    return absl::InvalidArgumentError(absl::StrCat(
        run_dir_.string(), ": already holds a run; choose another --out (runs are never overwritten)"));
  }
  LUMPY_RETURN_IF_ERROR(Prepare());
  const int64_t steps = exp_.runtime.GetInt("steps");
  const int64_t every = exp_.telemetry.GetInt("every");
  const int64_t checkpoint_every = exp_.checkpoint.GetInt("every");
  const bool best_after_update = exp_.stopping.GetString("best_step_model") == "after_update";
  first_step_ = loop_.next_step;
  Progress progress(steps, options_.progress && exp_.telemetry.GetBool("progress"), first_step_);
  start_ = std::chrono::steady_clock::now();
  StopSignals signals;
  Ending ending;
  for (int64_t step = first_step_; step < steps; ++step) {
    if (signals.received()) {
      ending.interrupted = absl::StrCat("interrupted by signal ", signals.received(), " after step ", step,
                                        " of ", steps, "; the run folder holds everything so far");
      break;
    }
    const auto t_step = std::chrono::steady_clock::now();
    const double step_lr = SetLearningRate(step);
    auto s = ComputeLoss(step);
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
    if (step % every == 0 || step + 1 == steps) {
      if (auto st = WriteRow(s->row); !st.ok()) {
        ending.failure = st;
        break;
      }
    }
    timing_.step += Since(t_step);
    progress.Update(loop_.next_step, loss);

    ending.stop_reason = StopReason(step, loss);
    const bool last = step + 1 == steps || !ending.stop_reason.empty();
    if (!last && checkpoint_every > 0 && (step + 1) % checkpoint_every == 0) {
      if (auto st = SaveCheckpoint(step); !st.ok()) {
        ending.failure = st;
        break;
      }
    }
    FaultPoint("kill-after-step", step);
    if (!ending.stop_reason.empty()) break;
  }
  progress.Finish();
  return Finish(ending);
}

// The final state: a checkpoint (unless the run failed, so latest.pt keeps
// the last good one), the metric alone in model.pt, and summary.json.
absl::Status Session::Finish(const Ending& ending_in) {
  Ending ending = ending_in;
  bool failed = !ending.failure.ok();
  if (!failed && (loop_.next_step > first_step_ || finish_only_)) {
    ending.failure = SaveCheckpoint(loop_.next_step - 1, /*certify=*/ending.interrupted.empty());
    if (ending.failure.ok()) {
      torch::serialize::OutputArchive archive;
      c_.model->save(archive);
      WritePhysicalScalars(physical_, archive);  // fitted h0, Omega_m, ...: probe, distances and report read them
      WriteModelKind(archive, exp_.model.entry->name);
      ending.failure = SaveArchiveAtomically(archive, run_dir_ / "model.pt", loop_.next_step - 1);
    }
    failed = !ending.failure.ok();
  }
  if (failed && best_step_) (void)best_step_->Write(c_);  // the best model before the failure
  if (failed) {
    const auto code = ending.failure.code();
    ending.failure = absl::Status(
        code,
        absl::StrCat(ending.failure.message(),
                     !fs::exists(checkpoints_ / "latest.pt") ? "; no checkpoint was written before it"
                     : code == absl::StatusCode::kAborted
                         ? "; checkpoints/latest.pt keeps the last good state (lumpy resume continues from it)"
                     : code == absl::StatusCode::kUnavailable
                         ? "; checkpoints/latest.pt keeps the last good state (lumpy resume continues from it "
                           "once the write can succeed)"
                         : "; checkpoints/latest.pt keeps the last good state (a plugin broke its contract: "
                           "resuming repeats it)"));
  }
  nlohmann::json summary = Summary(ending);
  if (!failed && ending.interrupted.empty() && exp_.certify.GetInt("points") > 0) {
    summary["held_out"] = HeldOut(&summary);
  }
  FaultPoint("kill-before-summary", loop_.next_step - 1);
  if (auto st = WriteAtomically(run_dir_ / "summary.json", summary.dump(2) + "\n"); !st.ok()) {
    if (!failed) return st;
    return absl::Status(ending.failure.code(), absl::StrCat(ending.failure.message(), "; ", st.message()));
  }
  if (failed) return ending.failure;
  if (!ending.interrupted.empty()) return absl::CancelledError(ending.interrupted);
  return absl::OkStatus();
}

nlohmann::json Session::Summary(const Ending& ending) const {
  const bool failed = !ending.failure.ok();
  const double elapsed = Since(start_);
  nlohmann::json summary;
  summary["experiment"] = exp_.name;
  summary["source"] = exp_.file.string();
  summary["lumpy_version"] = LUMPY_VERSION_STRING;
  summary["status"] = failed                        ? "failed"
                      : !ending.interrupted.empty() ? "interrupted"
                      : !ending.stop_reason.empty() ? "stopped"
                                                    : "completed";
  if (failed) summary["error"] = std::string(ending.failure.message());
  if (!ending.interrupted.empty()) summary["error"] = ending.interrupted;
  if (!ending.stop_reason.empty()) summary["stop_reason"] = ending.stop_reason;
  summary["steps"] = loop_.next_step;
  if (options_.resume) summary["resumed_at_step"] = first_step_;
  summary["wall_time_s"] = resumed_wall_time_ + elapsed;
  const int64_t done_here = loop_.next_step - first_step_;
  summary["steps_per_second"] = done_here / std::max(elapsed, 1e-9);
  summary["points_per_step"] = points_per_step_;
  const double engine = timing_.step - timing_.loss - timing_.backward;
  summary["timing"] = {
      {"steps", done_here},
      {"step_s", timing_.step},
      {"loss_s", timing_.loss},
      {"backward_s", timing_.backward},
      {"engine_s", engine},
      {"engine_fraction", timing_.step > 0 ? engine / timing_.step : 0.0},
      {"checkpoint_s", timing_.checkpoint},
      {"note", "per step: loss_s (sampling, every term, handlers, curricula) + backward_s "
               "(loss.backward) + engine_s (optimizer, clipping, projection, handler updates, "
               "telemetry) = step_s; checkpoint_s: checkpoints with their held-out checks"}};
  summary["runtime"] = {{"dtype", exp_.runtime.GetString("dtype")},
                        {"threads", torch::get_num_threads()},
                        {"seed", exp_.runtime.GetInt("seed")},
                        {"device", exp_.runtime.GetString("device")}};
  if (!last_row_.empty()) {
    nlohmann::json final_values;
    for (size_t i = 1; i + 1 < columns_.size(); ++i) final_values[columns_[i]] = last_row_[i];
    summary["final"] = final_values;
  }
  summary["best"] = {{"loss", loop_.best_loss}, {"step", loop_.best_step}};
  if (best_step_ && best_step_->written_step() >= 0) {
    summary["best_step_checkpoint"] = {{"file", "checkpoints/best_step.pt"},
                                       {"step", best_step_->written_step()},
                                       {"loss", best_step_->written_loss()},
                                       {"model", exp_.stopping.GetString("best_step_model")}};
  }
  nlohmann::json terms;
  for (const auto& l : c_.losses) terms[l.spec->name] = l.spec->term.entry->name;
  summary["terms"] = terms;
  if (!physical_.empty()) {
    // After the last update: the values model.pt holds (final.* are the
    // values the last step's loss used).
    nlohmann::json physical;
    for (const auto& p : physical_) physical[p.column] = p.parameter.value.item<double>();
    summary["physical"] = physical;
  }
  if (!failed) summary["observer"] = Observer();
  if (!best_checkpoint_.is_null()) summary["best_checkpoint"] = best_checkpoint_;
  return summary;
}

// The learned universe at the observer today, (t,x,y,z) = (1,0,0,0).
nlohmann::json Session::Observer() const {
  torch::NoGradGuard no_grad;
  try {
    PointSetContext here(*c_.model, torch::tensor({1.0, 0.0, 0.0, 0.0}, tensor_options_).view({1, 4}));
    Geometry& g = here.geometry(2);
    auto h = g.hubble_rates().to(torch::kCPU, torch::kFloat64);
    return {{"H_x", h[0][0].item<double>()},
            {"H_y", h[0][1].item<double>()},
            {"H_z", h[0][2].item<double>()},
            {"H_mean", g.hubble_mean().item<double>()},
            {"shear_sq", g.shear_squared().item<double>()},
            {"ricci_scalar", g.ricci_scalar().item<double>()},
            {"note", "at (t,x,y,z) = (1,0,0,0); rates per unit t (1000 Mpc / c)"}};
  } catch (const c10::Error& e) {
    return {{"error", e.what_without_backtrace()}};
  }
}

// The final state on the held-out grid (taken from the best checkpoint's
// certificate when that was the final state), with the time it took.
nlohmann::json Session::HeldOut(nlohmann::json* summary) {
  nlohmann::json held_out;
  if (best_checkpoint_.is_object() && best_checkpoint_.contains("held_out") &&
      best_checkpoint_["step"].get<int64_t>() == loop_.next_step - 1) {
    held_out = best_checkpoint_["held_out"];  // the final state, certified already
  } else {
    const auto t = std::chrono::steady_clock::now();
    held_out = CertifyOrError(c_, exp_.certify.GetInt("points"), tensor_options_, CertifyOptionsOf(exp_));
    (*summary)["held_out_s"] = Since(t);
  }
  (*summary)["held_out_step"] = loop_.next_step - 1;
  if (options_.progress && exp_.telemetry.GetBool("progress")) {
    if (held_out.contains("error")) {
      std::fprintf(stderr, "held-out certificate failed: %s\n", held_out["error"].get<std::string>().c_str());
    } else {
      for (const auto& line : CertificateLines(held_out)) std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  return held_out;
}

}  // namespace

absl::Status Train(const Experiment& exp, Components& c, const TrainOptions& options) {
  Session session(exp, c, options);
  return session.Run();
}

}  // namespace lumpy
