#include "train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/threads.h"
#include "lumpy/build_info.h"
#include "train/certify.h"
#include "train/checkpoint.h"
#include "train/point_set_context.h"
#include "train/progress.h"
#include "train/schedule.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

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

torch::Tensor SamplePoints(const DomainSpec& domain, const torch::TensorOptions& options) {
  std::vector<torch::Tensor> parts;
  for (const auto& s : domain.strata) {
    auto u = torch::rand({s.count, 4}, options);
    auto lo = torch::tensor({s.t_min, domain.x[0], domain.y[0], domain.z[0]}, options);
    auto hi = torch::tensor({s.t_max, domain.x[1], domain.y[1], domain.z[1]}, options);
    parts.push_back(lo + (hi - lo) * u);
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

namespace {

// Everything one training run holds: the parameter groups, the optimizer,
// the metrics columns and the loop's bookkeeping, with the checkpoint that
// captures all of it.
class Session {
 public:
  Session(const Experiment& exp, Components& c, const TrainOptions& options)
      : exp_(exp), c_(c), options_(options), schedule_(exp.optimizer) {}

  absl::Status Run();

 private:
  struct Physical {
    std::string column;
    PhysicalParameter parameter;
  };
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

  void BuildOptimizer();
  std::vector<std::string> Columns() const;
  // Sets every group's rate for `step`; returns the network's.
  double SetLearningRate(int64_t step);
  torch::serialize::OutputArchive Checkpoint() const;
  absl::Status SaveCheckpoint(const fs::path& file, int64_t step_done) const;
  // The physical scalars' values ("physical") and column names
  // ("physical_names", one per line), as ReadPhysicalScalars reads them.
  void WritePhysical(torch::serialize::OutputArchive& a) const;
  absl::Status LoadCheckpoint(const fs::path& file);
  absl::Status PrepareMetricsForResume(const fs::path& file, const std::vector<std::string>& columns);

  const Experiment& exp_;
  Components& c_;
  const TrainOptions& options_;
  LearningRateSchedule schedule_;
  torch::TensorOptions tensor_options_;
  std::vector<torch::Tensor> network_, others_;
  std::vector<Physical> physical_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<double> group_factor_;  // per optimizer group: lr factor over the network's
  Loop loop_;
  double resumed_wall_time_ = 0;  // wall time of the last kept metrics row
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
  // Physical scalars (Omega_m, ...): one group each, learning rate x factor,
  // never clipped, projected into their bounds after every step.
  for (auto& p : model.physical_parameters()) physical_.push_back({"model." + p.name, p});
  for (auto& l : c_.losses) {
    for (auto& p : l.term->physical_parameters()) physical_.push_back({l.spec->name + "." + p.name, p});
  }
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
  c_.model->save(model);
  a.write("model", model);
  torch::serialize::OutputArchive optimizer;
  optimizer_->save(optimizer);
  a.write("optimizer", optimizer);
  torch::serialize::OutputArchive weighters;
  for (const auto& d : c_.domains) {
    torch::serialize::OutputArchive w;
    d.weighter->save(w);
    weighters.write(d.spec->name, w);
  }
  a.write("weighters", weighters);
  torch::serialize::OutputArchive handlers;
  for (const auto& l : c_.losses) {
    if (!l.handler) continue;
    torch::serialize::OutputArchive h;
    for (const auto& [k, v] : l.handler->state()) h.write(k, v.detach());
    handlers.write(l.spec->name, h);
  }
  a.write("handlers", handlers);
  WritePhysical(a);
  return a;
}

void Session::WritePhysical(torch::serialize::OutputArchive& a) const {
  std::vector<double> values;
  std::vector<std::string> names;
  for (const auto& p : physical_) {
    values.push_back(p.parameter.value.item<double>());
    names.push_back(p.column);
  }
  a.write("physical", torch::tensor(values, torch::kFloat64));
  a.write("physical_names", c10::IValue(absl::StrJoin(names, "\n")));
}

absl::Status Session::SaveCheckpoint(const fs::path& file, int64_t step_done) const {
  auto archive = Checkpoint();
  return SaveArchiveAtomically(archive, file, step_done);
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
    const std::string mine = ExperimentFingerprint(exp_);
    if (fingerprint.toStringRef() != mine) {
      // Name the first line that differs.
      std::istringstream theirs_in(fingerprint.toStringRef()), mine_in(mine);
      std::string theirs_line, mine_line;
      int line = 0;
      while (true) {
        ++line;
        const bool t = static_cast<bool>(std::getline(theirs_in, theirs_line));
        const bool m = static_cast<bool>(std::getline(mine_in, mine_line));
        if (!t && !m) break;
        if (!t) theirs_line = "(end)";
        if (!m) mine_line = "(end)";
        if (theirs_line != mine_line) break;
      }
      return bad(absl::StrCat("from an incompatible experiment: the checkpoint's experiment has \"",
                              theirs_line, "\" where this one has \"", mine_line,
                              "\" (line ", line, " of the resolved TOML)"));
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
    c_.model->load(model);
    a.read("optimizer", optimizer);
    optimizer_->load(optimizer);
    a.read("weighters", weighters);
    for (const auto& d : c_.domains) {
      torch::serialize::InputArchive w;
      weighters.read(d.spec->name, w);
      d.weighter->load(w);
    }
    a.read("handlers", handlers);
    for (const auto& l : c_.losses) {
      if (!l.handler) continue;
      torch::serialize::InputArchive h;
      handlers.read(l.spec->name, h);
      std::map<std::string, torch::Tensor> state;
      for (const auto& [k, v] : l.handler->state()) {
        torch::Tensor value;
        if (!h.try_read(k, value)) {
          return bad(absl::StrCat("handler of loss.", l.spec->name, " has no state \"", k, "\""));
        }
        state[k] = value;
      }
      if (auto st = l.handler->load_state(state); !st.ok()) {
        return bad(absl::StrCat("loss.", l.spec->name, ".constraint: ", st.message()));
      }
    }
    torch::Tensor values;
    a.read("physical", values);
    if (values.numel() != static_cast<int64_t>(physical_.size())) {
      return bad(absl::StrCat("holds ", values.numel(), " physical scalars, the experiment has ",
                              physical_.size()));
    }
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < physical_.size(); ++i) physical_[i].parameter.value.fill_(values[i].item<double>());
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

// Keeps metrics.csv's header and the rows of the steps before the
// checkpoint; the resumed run writes the rest again.
absl::Status Session::PrepareMetricsForResume(const fs::path& file,
                                              const std::vector<std::string>& columns) {
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": missing; cannot resume"));
  std::string header, line, kept;
  std::getline(in, header);
  std::string expected;
  for (size_t i = 0; i < columns.size(); ++i) absl::StrAppend(&expected, i ? "," : "", columns[i]);
  if (header != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": its columns do not match this experiment's; expected \"", expected,
        "\", found \"", header, "\""));
  }
  while (std::getline(in, line)) {
    const int64_t step = std::atoll(line.substr(0, line.find(',')).c_str());
    if (!line.empty() && step < loop_.next_step) {
      absl::StrAppend(&kept, line, "\n");
      resumed_wall_time_ = std::atof(line.substr(line.rfind(',') + 1).c_str());
    }
  }
  return WriteAtomically(file, absl::StrCat(header, "\n", kept));
}

absl::Status Session::Run() {
  if (auto st = CheckTrainable(exp_, c_); !st.ok()) return st;
  tensor_options_ = RuntimeOptions(exp_);
  const int64_t steps = exp_.runtime.GetInt("steps");
  const int64_t every = exp_.telemetry.GetInt("every");
  const int64_t checkpoint_every = exp_.checkpoint.GetInt("every");
  const double target_loss = exp_.stopping.GetDouble("target_loss");
  const int64_t patience = exp_.stopping.GetInt("patience");
  const int64_t certify_points = exp_.certify.GetInt("points");
  const bool certify_on_best = exp_.certify.GetBool("on_best");
  const bool penalty_decay = exp_.optimizer.GetBool("penalty_decay");
  const fs::path run_dir = options_.run_dir;
  const fs::path checkpoints = run_dir / "checkpoints";
  const fs::path latest = checkpoints / "latest.pt";
  const fs::path best = checkpoints / "best.pt";

  MetricModel& model = *c_.model;
  model.to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  model.train();
  for (auto& d : c_.domains) d.weighter->to(tensor_options_.device(), tensor_options_.dtype().toScalarType());
  BuildOptimizer();
  const std::vector<std::string> columns = Columns();

  // Resume: everything is checked before anything in the folder changes.
  nlohmann::json previous_summary;
  if (options_.resume) {
    if (auto st = LoadCheckpoint(latest); !st.ok()) return st;
    if (loop_.next_step >= steps) {
      return absl::InvalidArgumentError(absl::StrCat(
          run_dir.string(), ": the checkpoint is at step ", loop_.next_step,
          " and runtime.steps is ", steps, "; give a larger total with --steps"));
    }
    std::ifstream prev(run_dir / "summary.json");
    if (prev) previous_summary = nlohmann::json::parse(prev, nullptr, false);  // best checkpoint
    if (auto st = PrepareMetricsForResume(run_dir / "metrics.csv", columns); !st.ok()) return st;
  }

  std::error_code ec;
  fs::create_directories(checkpoints, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create run folder ", checkpoints.string(), ": ", ec.message()));
  }
  {
    std::string header = absl::StrCat(
        "# Resolved experiment, written by lumpy ", LUMPY_VERSION_STRING, " from ",
        exp_.file.string(), ".\n# Every default is filled in; `lumpy run` this file to repeat the run.\n\n");
    if (auto st = WriteAtomically(run_dir / "experiment.toml", header + ToToml(exp_.resolved));
        !st.ok()) {
      return st;
    }
  }

  // metrics.csv: one row per logged step, flushed at once.
  std::ofstream metrics(run_dir / "metrics.csv", options_.resume ? std::ios::app : std::ios::trunc);
  if (!metrics) return absl::InternalError("cannot write metrics.csv in " + run_dir.string());
  if (!options_.resume) {
    for (size_t i = 0; i < columns.size(); ++i) metrics << (i ? "," : "") << columns[i];
    metrics << "\n" << std::flush;
  }

  // Each loss term's domain (-1: a dataset term, evaluated on no points).
  std::vector<int> domain_of(c_.losses.size(), -1);
  for (size_t i = 0; i < c_.losses.size(); ++i) {
    for (size_t d = 0; d < c_.domains.size(); ++d) {
      if (c_.domains[d].spec->name == c_.losses[i].spec->domain) domain_of[i] = static_cast<int>(d);
    }
  }

  const int64_t first_step = loop_.next_step;
  Progress progress(steps, options_.progress && exp_.telemetry.GetBool("progress"), first_step);
  const auto start = std::chrono::steady_clock::now();
  const double wall_before = resumed_wall_time_;
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  // Where the time goes: loss (sampling, terms, handlers, curricula),
  // backward, and the engine's own work per step (optimizer, clipping,
  // projection, handler updates, telemetry); checkpoints and held-out
  // checks apart.
  double loss_seconds = 0, backward_seconds = 0, step_seconds = 0, checkpoint_seconds = 0;

  std::vector<double> last_row;
  std::string failure, stop_reason;
  int64_t points_per_step = 0;
  nlohmann::json best_checkpoint = previous_summary.is_object() && previous_summary.contains("best_checkpoint")
                                       ? previous_summary["best_checkpoint"]
                                       : nlohmann::json();

  // A checkpoint of the state after `step`; a new best interval also
  // becomes best.pt and, if asked, is certified on the held-out grid.
  auto write_checkpoint = [&](int64_t step) -> absl::Status {
    const double window_mean =
        loop_.window_count ? loop_.window_sum / static_cast<double>(loop_.window_count) : INFINITY;
    loop_.window_sum = 0;
    loop_.window_count = 0;
    const bool new_best = window_mean < loop_.best_window;
    if (new_best) loop_.best_window = window_mean;
    if (auto st = SaveCheckpoint(latest, step); !st.ok()) return st;
    if (new_best) {
      fs::copy_file(latest, checkpoints / "best.pt.tmp", fs::copy_options::overwrite_existing, ec);
      if (!ec) fs::rename(checkpoints / "best.pt.tmp", best, ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot write ", best.string(), ": ", ec.message()));
      best_checkpoint = {{"file", "checkpoints/best.pt"}, {"step", step}, {"interval_mean_loss", window_mean}};
      if (certify_on_best && certify_points > 0) {
        best_checkpoint["held_out"] = Certify(c_, certify_points, tensor_options_);
      }
    }
    return absl::OkStatus();
  };
  auto checkpoint = [&](int64_t step) {
    const auto t = std::chrono::steady_clock::now();
    absl::Status st = write_checkpoint(step);
    checkpoint_seconds += since(t);
    return st;
  };

  StopSignals signals;
  std::string interrupted;
  for (int64_t step = first_step; step < steps; ++step) {
    if (signals.received()) {
      interrupted = absl::StrCat("interrupted by signal ", signals.received(), " after step ",
                                 step, " of ", steps, "; the run folder holds everything so far");
      break;
    }
    const auto t_step = std::chrono::steady_clock::now();
    const double step_lr = SetLearningRate(step);
    const auto t_sample = t_step;
    std::unique_ptr<Geometry> observer;
    std::vector<std::unique_ptr<PointSetContext>> contexts;
    for (const auto& d : c_.domains) {
      contexts.push_back(std::make_unique<PointSetContext>(
          model, SamplePoints(*d.spec, tensor_options_), &observer, step));
    }
    PointSetContext dataset_context(model, torch::zeros({0, 4}, tensor_options_), &observer, step);
    points_per_step = 0;
    for (auto& ctx : contexts) points_per_step += ctx->points().size(0);
    const double sample_seconds = since(t_sample);

    const auto t_loss = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> sums(c_.domains.size());
    std::vector<torch::Tensor> violations(c_.losses.size());
    torch::Tensor direct;
    std::vector<double> row{static_cast<double>(step), 0.0};
    for (size_t i = 0; i < c_.losses.size(); ++i) {
      const auto& l = c_.losses[i];
      const int di = domain_of[i];
      PointSetContext& ctx = di >= 0 ? *contexts[di] : dataset_context;
      LossValue value;
      try {
        value = l.term->evaluate(ctx);
      } catch (const c10::Error& e) {
        failure = absl::StrCat("step ", step, ": loss term \"", l.spec->name, "\" (",
                               l.spec->term.entry->name, ") failed: ", e.what_without_backtrace());
        break;
      }
      const int64_t n = ctx.points().size(0);
      const bool dataset_term = l.spec->kind == LossKind::kDataset;
      if (dataset_term && value.per_point.defined()) {
        return absl::InternalError(absl::StrCat(
            "loss term \"", l.spec->name, "\" (", l.spec->term.entry->name,
            ") is registered as a dataset term but returned per-point values"));
      }
      if (!dataset_term && (!value.per_point.defined() || value.per_point.dim() != 1 ||
                            value.per_point.size(0) != n)) {
        return absl::InternalError(absl::StrCat(
            "loss term \"", l.spec->name, "\" (", l.spec->term.entry->name,
            ") returned per-point values of shape ",
            value.per_point.defined() ? c10::str(value.per_point.sizes()) : "undefined",
            ", expected [", n, "]"));
      }
      torch::Tensor contribution;
      double term_value = value.value.item<double>();
      row.push_back(term_value);
      for (const auto& [k, v] : l.term->telemetry()) row.push_back(v);
      if (l.handler) {
        violations[i] = value.per_point;
        Penalty p = l.handler->penalty(value.per_point);
        contribution = p.per_point;
        const double penalty = p.total.item<double>();
        row.push_back(penalty);
        for (const auto& [k, v] : l.handler->telemetry()) row.push_back(v);
        if (std::isfinite(term_value) && !std::isfinite(penalty)) term_value = penalty;
      } else if (dataset_term) {
        direct = direct.defined() ? direct + l.spec->weight * value.value
                                  : l.spec->weight * value.value;
      } else {
        contribution = l.spec->weight * value.per_point;
      }
      if (!std::isfinite(term_value)) {
        failure = absl::StrCat("step ", step, ": loss term \"", l.spec->name, "\" is ",
                               term_value, "; stopping");
        break;
      }
      if (contribution.defined()) {
        sums[di] = sums[di].defined() ? sums[di] + contribution : contribution;
      }
    }
    if (!failure.empty()) break;
    torch::Tensor loss = direct;  // dataset terms, past the curricula
    for (size_t di = 0; di < c_.domains.size(); ++di) {
      if (!sums[di].defined()) continue;
      auto reduced = c_.domains[di].weighter->reduce(contexts[di]->points(), sums[di]);
      loss = loss.defined() ? loss + reduced : reduced;
    }
    for (const auto& d : c_.domains) {
      for (const auto& [k, v] : d.weighter->telemetry()) row.push_back(v);
    }
    // Physical scalars as this step's loss used them.
    for (const auto& p : physical_) row.push_back(p.parameter.value.item<double>());
    const double loss_value = loss.item<double>();
    loss_seconds += since(t_loss) + sample_seconds;
    row[1] = loss_value;
    if (!std::isfinite(loss_value)) {
      failure = absl::StrCat("step ", step, ": the total loss is ", loss_value, "; stopping");
      break;
    }
    if (loss_value < loop_.best_loss) {
      loop_.best_loss = loss_value;
      loop_.best_step = step;
    }
    loop_.window_sum += loss_value;
    ++loop_.window_count;

    const auto t_backward = std::chrono::steady_clock::now();
    optimizer_->zero_grad();
    loss.backward();
    backward_seconds += since(t_backward);
    if (!network_.empty()) torch::nn::utils::clip_grad_norm_(network_, exp_.optimizer.GetDouble("clip_norm"));
    optimizer_->step();
    {
      torch::NoGradGuard no_grad;
      for (auto& p : physical_) p.parameter.value.clamp_(p.parameter.min, p.parameter.max);
    }
    bool raised = false;
    for (size_t i = 0; i < c_.losses.size(); ++i) {
      if (c_.losses[i].handler) {
        c_.losses[i].handler->update(violations[i].detach(), step);
        raised |= c_.losses[i].handler->raised_penalty();
      }
    }
    if (raised && penalty_decay) loop_.lr_scale *= 0.5;

    row.push_back(step_lr);
    row.push_back(wall_before + elapsed());
    last_row = row;
    if (step % every == 0 || step + 1 == steps) {
      for (size_t i = 0; i < row.size(); ++i) {
        metrics << (i ? "," : "") << (i == 0 ? std::to_string(step) : Num(row[i]));
      }
      metrics << "\n" << std::flush;
    }
    loop_.next_step = step + 1;
    step_seconds += since(t_step);
    progress.Update(loop_.next_step, loss_value);

    if (loss_value <= target_loss) {
      stop_reason = absl::StrCat("reached the target loss ", Num(target_loss), " at step ", step);
    } else if (patience > 0 && step - loop_.best_step >= patience) {
      stop_reason = absl::StrCat("no new best loss in ", patience, " steps (best ",
                                 Num(loop_.best_loss), " at step ", loop_.best_step, ")");
    }
    const bool last = step + 1 == steps || !stop_reason.empty();
    if (!last && checkpoint_every > 0 && (step + 1) % checkpoint_every == 0) {
      if (auto st = checkpoint(step); !st.ok()) return st;
    }
    FaultPoint("kill-after-step", step);
    if (!stop_reason.empty()) break;
  }
  progress.Finish();

  // The final state: a checkpoint (unless the run failed, so latest.pt keeps
  // the last good one) and the metric alone in model.pt.
  if (failure.empty() && loop_.next_step > first_step) {
    if (auto st = checkpoint(loop_.next_step - 1); !st.ok()) return st;
    torch::serialize::OutputArchive archive;
    model.save(archive);
    WritePhysical(archive);  // fitted h0, Omega_m, ...: probe, distances and report read them
    if (auto st = SaveArchiveAtomically(archive, run_dir / "model.pt", loop_.next_step - 1); !st.ok()) {
      return st;
    }
  }
  if (!failure.empty()) {
    absl::StrAppend(&failure, fs::exists(latest)
                                  ? "; checkpoints/latest.pt keeps the last good state (lumpy resume "
                                    "continues from it)"
                                  : "; no checkpoint was written before it");
  }

  const double wall = wall_before + elapsed();
  nlohmann::json summary;
  summary["experiment"] = exp_.name;
  summary["source"] = exp_.file.string();
  summary["lumpy_version"] = LUMPY_VERSION_STRING;
  summary["status"] = !failure.empty() ? "failed"
                      : !interrupted.empty() ? "interrupted"
                      : !stop_reason.empty() ? "stopped"
                                             : "completed";
  if (!failure.empty()) summary["error"] = failure;
  if (!interrupted.empty()) summary["error"] = interrupted;
  if (!stop_reason.empty()) summary["stop_reason"] = stop_reason;
  summary["steps"] = loop_.next_step;
  if (options_.resume) summary["resumed_at_step"] = first_step;
  summary["wall_time_s"] = wall;
  const int64_t done_here = loop_.next_step - first_step;
  summary["steps_per_second"] = done_here / std::max(elapsed(), 1e-9);
  summary["points_per_step"] = points_per_step;
  const double engine_seconds = step_seconds - loss_seconds - backward_seconds;
  summary["timing"] = {
      {"steps", done_here},
      {"step_s", step_seconds},
      {"loss_s", loss_seconds},
      {"backward_s", backward_seconds},
      {"engine_s", engine_seconds},
      {"engine_fraction", step_seconds > 0 ? engine_seconds / step_seconds : 0.0},
      {"checkpoint_s", checkpoint_seconds},
      {"note", "per step: loss_s (sampling, every term, handlers, curricula) + backward_s "
               "(loss.backward) + engine_s (optimizer, clipping, projection, handler updates, "
               "telemetry) = step_s; checkpoint_s: checkpoints with their held-out checks"}};
  summary["runtime"] = {{"dtype", exp_.runtime.GetString("dtype")},
                        {"threads", torch::get_num_threads()},
                        {"seed", exp_.runtime.GetInt("seed")},
                        {"device", exp_.runtime.GetString("device")}};
  if (!last_row.empty()) {
    nlohmann::json final_values;
    for (size_t i = 1; i + 1 < columns.size(); ++i) final_values[columns[i]] = last_row[i];
    summary["final"] = final_values;
  }
  summary["best"] = {{"loss", loop_.best_loss}, {"step", loop_.best_step}};
  {
    nlohmann::json terms;
    for (const auto& l : c_.losses) terms[l.spec->name] = l.spec->term.entry->name;
    summary["terms"] = terms;
  }
  if (!physical_.empty()) {
    // After the last update: the values model.pt holds (final.* are the
    // values the last step's loss used).
    nlohmann::json physical;
    for (const auto& p : physical_) physical[p.column] = p.parameter.value.item<double>();
    summary["physical"] = physical;
  }
  if (failure.empty()) {
    // The learned universe at the observer today, (t,x,y,z) = (1,0,0,0).
    torch::NoGradGuard no_grad;
    try {
    PointSetContext here(model, torch::tensor({1.0, 0.0, 0.0, 0.0}, tensor_options_).view({1, 4}));
    Geometry& g = here.geometry(2);
    auto h = g.hubble_rates().to(torch::kCPU, torch::kFloat64);
    summary["observer"] = {{"H_x", h[0][0].item<double>()},
                           {"H_y", h[0][1].item<double>()},
                           {"H_z", h[0][2].item<double>()},
                           {"H_mean", g.hubble_mean().item<double>()},
                           {"shear_sq", g.shear_squared().item<double>()},
                           {"ricci_scalar", g.ricci_scalar().item<double>()},
                           {"note", "at (t,x,y,z) = (1,0,0,0); rates per unit t (1000 Mpc / c)"}};
    } catch (const c10::Error& e) {
      summary["observer"] = {{"error", e.what_without_backtrace()}};
    }
  }
  if (!best_checkpoint.is_null()) summary["best_checkpoint"] = best_checkpoint;
  if (failure.empty() && certify_points > 0) {
    if (best_checkpoint.is_object() && best_checkpoint.contains("held_out") &&
        best_checkpoint["step"].get<int64_t>() == loop_.next_step - 1) {
      summary["held_out"] = best_checkpoint["held_out"];  // the final state, certified already
    } else {
      const auto t_certify = std::chrono::steady_clock::now();
      summary["held_out"] = Certify(c_, certify_points, tensor_options_);
      summary["held_out_s"] = since(t_certify);
    }
    summary["held_out_step"] = loop_.next_step - 1;
    if (options_.progress && exp_.telemetry.GetBool("progress")) {
      for (const auto& [domain, d] : summary["held_out"].items()) {
        std::string line = absl::StrFormat("held-out %s (%d points never trained on): min R %.3e",
                                           domain, d["points"].get<int64_t>(),
                                           d["ricci_min"].is_number() ? d["ricci_min"].get<double>() : NAN);
        for (const auto& [name, cj] : d["constraints"].items()) {
          absl::StrAppendFormat(&line, "; %s max %.3e mean %.3e", name,
                                cj["max"].is_number() ? cj["max"].get<double>() : NAN,
                                cj["mean"].is_number() ? cj["mean"].get<double>() : NAN);
        }
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    }
  }
  if (auto st = WriteAtomically(run_dir / "summary.json", summary.dump(2) + "\n"); !st.ok()) {
    return st;
  }
  if (!failure.empty()) return absl::AbortedError(failure);
  if (!interrupted.empty()) return absl::CancelledError(interrupted);
  return absl::OkStatus();
}

}  // namespace

absl::Status Train(const Experiment& exp, Components& c, const TrainOptions& options) {
  Session session(exp, c, options);
  return session.Run();
}

}  // namespace lumpy
