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
#include "core/threads.h"
#include "lumpy/build_info.h"
#include "train/point_set_context.h"
#include "train/progress.h"

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

// Writes `text` to `path` through a temporary file and a rename, so a crash
// never leaves a half-written file.
absl::Status WriteAtomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()));
  return absl::OkStatus();
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

absl::Status Train(const Experiment& exp, Components& c, const TrainOptions& options) {
  if (auto st = CheckTrainable(exp, c); !st.ok()) return st;
  const auto tensor_options = RuntimeOptions(exp);
  const int64_t steps = exp.runtime.GetInt("steps");
  const int64_t every = exp.telemetry.GetInt("every");

  std::error_code ec;
  fs::create_directories(options.run_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create run folder ", options.run_dir.string(), ": ", ec.message()));
  }
  {
    std::string header = absl::StrCat(
        "# Resolved experiment, written by lumpy ", LUMPY_VERSION_STRING, " from ",
        exp.file.string(), ".\n# Every default is filled in; `lumpy run` this file to repeat the run.\n\n");
    if (auto st = WriteAtomically(options.run_dir / "experiment.toml",
                                  header + ToToml(exp.resolved));
        !st.ok()) {
      return st;
    }
  }

  MetricModel& model = *c.model;
  model.to(tensor_options.device(), tensor_options.dtype().toScalarType());
  model.train();

  // Parameter groups: the networks (metric, curricula) are clipped together;
  // learned handler parameters are not.
  std::vector<torch::Tensor> network = model.parameters();
  for (auto& d : c.domains) {
    d.weighter->to(tensor_options.device(), tensor_options.dtype().toScalarType());
    for (auto& p : d.weighter->parameters()) network.push_back(p);
  }
  std::vector<torch::Tensor> others;
  for (auto& l : c.losses) {
    if (l.handler) {
      for (auto& p : l.handler->parameters()) others.push_back(p);
    }
  }
  // Physical scalars (Omega_m, ...): one group each, learning rate x factor,
  // never clipped, projected into their bounds after every step.
  struct Physical {
    std::string column;
    PhysicalParameter parameter;
  };
  std::vector<Physical> physical;
  for (auto& p : model.physical_parameters()) physical.push_back({"model." + p.name, p});
  for (auto& l : c.losses) {
    for (auto& p : l.term->physical_parameters()) physical.push_back({l.spec->name + "." + p.name, p});
  }
  const double lr = exp.optimizer.GetDouble("lr");
  auto adam_options = [&](double factor) {
    return torch::optim::AdamOptions(lr * factor)
        .betas({exp.optimizer.GetDouble("beta1"), exp.optimizer.GetDouble("beta2")})
        .eps(exp.optimizer.GetDouble("eps"));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!network.empty()) groups.emplace_back(network);
  if (!others.empty()) groups.emplace_back(others);
  for (auto& p : physical) {
    groups.emplace_back(std::vector<torch::Tensor>{p.parameter.value},
                        std::make_unique<torch::optim::AdamOptions>(adam_options(p.parameter.lr_factor)));
  }
  torch::optim::Adam optimizer(groups, adam_options(1.0));
  const double clip_norm = exp.optimizer.GetDouble("clip_norm");

  // metrics.csv: one row per logged step, flushed at once.
  std::vector<std::string> columns = {"step", "loss"};
  for (const auto& l : c.losses) {
    columns.push_back(l.spec->name);
    for (const auto& [k, v] : l.term->telemetry()) columns.push_back(l.spec->name + "." + k);
    if (l.handler) {
      columns.push_back(l.spec->name + ".penalty");
      for (const auto& [k, v] : l.handler->telemetry()) columns.push_back(l.spec->name + "." + k);
    }
  }
  for (const auto& d : c.domains) {
    for (const auto& [k, v] : d.weighter->telemetry()) columns.push_back(d.spec->name + "." + k);
  }
  for (const auto& p : physical) columns.push_back(p.column);
  columns.insert(columns.end(), {"lr", "wall_time_s"});
  std::ofstream metrics(options.run_dir / "metrics.csv", std::ios::trunc);
  if (!metrics) return absl::InternalError("cannot write metrics.csv in " + options.run_dir.string());
  for (size_t i = 0; i < columns.size(); ++i) metrics << (i ? "," : "") << columns[i];
  metrics << "\n" << std::flush;

  Progress progress(steps, options.progress && exp.telemetry.GetBool("progress"));
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  double best_loss = INFINITY;
  int64_t best_step = -1;
  std::vector<double> last_row;
  std::string failure;
  int64_t completed = 0;
  int64_t points_per_step = 0;

  StopSignals signals;
  std::string interrupted;
  for (int64_t step = 0; step < steps; ++step) {
    if (signals.received()) {
      interrupted = absl::StrCat("interrupted by signal ", signals.received(), " after step ",
                                 step, " of ", steps, "; the run folder holds everything so far");
      break;
    }
    std::unique_ptr<Geometry> observer;
    std::vector<std::unique_ptr<PointSetContext>> contexts;
    for (const auto& d : c.domains) {
      contexts.push_back(std::make_unique<PointSetContext>(
          model, SamplePoints(*d.spec, tensor_options), &observer, step));
    }
    points_per_step = 0;
    for (auto& ctx : contexts) points_per_step += ctx->points().size(0);

    std::vector<torch::Tensor> sums(c.domains.size());
    std::vector<torch::Tensor> violations(c.losses.size());
    torch::Tensor direct;
    std::vector<double> row{static_cast<double>(step), 0.0};
    for (size_t i = 0; i < c.losses.size(); ++i) {
      const auto& l = c.losses[i];
      size_t di = 0;
      while (c.domains[di].spec->name != l.spec->domain) ++di;
      PointSetContext& ctx = *contexts[di];
      LossValue value;
      try {
        value = l.term->evaluate(ctx);
      } catch (const c10::Error& e) {
        return absl::InternalError(absl::StrCat("step ", step, ": loss term \"", l.spec->name,
                                                "\" (", l.spec->term.entry->name,
                                                ") failed: ", e.what_without_backtrace()));
      }
      const int64_t n = ctx.points().size(0);
      const bool dataset_term = !value.per_point.defined();
      if (dataset_term && l.handler) {
        return absl::InternalError(absl::StrCat(
            "loss term \"", l.spec->name, "\" (", l.spec->term.entry->name,
            ") returned no per-point violations, which its constraint handler needs"));
      }
      if (!dataset_term && (value.per_point.dim() != 1 || value.per_point.size(0) != n)) {
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
                               term_value,
                               "; stopping (metrics.csv holds every logged step before it)");
        break;
      }
      if (contribution.defined()) {
        sums[di] = sums[di].defined() ? sums[di] + contribution : contribution;
      }
    }
    if (!failure.empty()) break;
    torch::Tensor loss = direct;  // dataset terms, past the curricula
    for (size_t di = 0; di < c.domains.size(); ++di) {
      if (!sums[di].defined()) continue;
      auto reduced = c.domains[di].weighter->reduce(contexts[di]->points(), sums[di]);
      loss = loss.defined() ? loss + reduced : reduced;
    }
    for (const auto& d : c.domains) {
      for (const auto& [k, v] : d.weighter->telemetry()) row.push_back(v);
    }
    // Physical scalars as this step's loss used them.
    for (const auto& p : physical) row.push_back(p.parameter.value.item<double>());
    const double loss_value = loss.item<double>();
    row[1] = loss_value;
    if (!std::isfinite(loss_value)) {
      failure = absl::StrCat("step ", step, ": the total loss is ", loss_value,
                             "; stopping (metrics.csv holds every logged step before it)");
      break;
    }
    if (loss_value < best_loss) {
      best_loss = loss_value;
      best_step = step;
    }

    optimizer.zero_grad();
    loss.backward();
    if (!network.empty()) torch::nn::utils::clip_grad_norm_(network, clip_norm);
    optimizer.step();
    {
      torch::NoGradGuard no_grad;
      for (auto& p : physical) p.parameter.value.clamp_(p.parameter.min, p.parameter.max);
    }
    for (size_t i = 0; i < c.losses.size(); ++i) {
      if (c.losses[i].handler) c.losses[i].handler->update(violations[i].detach(), step);
    }

    row.push_back(lr);
    row.push_back(elapsed());
    last_row = row;
    if (step % every == 0 || step + 1 == steps) {
      for (size_t i = 0; i < row.size(); ++i) {
        metrics << (i ? "," : "") << (i == 0 ? std::to_string(step) : Num(row[i]));
      }
      metrics << "\n" << std::flush;
    }
    completed = step + 1;
    progress.Update(completed, loss_value);
  }
  progress.Finish();

  // The trained metric, written atomically.
  {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    fs::path tmp = options.run_dir / "model.pt.tmp";
    archive.save_to(tmp.string());
    fs::rename(tmp, options.run_dir / "model.pt", ec);
  }

  nlohmann::json summary;
  summary["experiment"] = exp.name;
  summary["source"] = exp.file.string();
  summary["lumpy_version"] = LUMPY_VERSION_STRING;
  summary["status"] = !failure.empty() ? "failed" : (!interrupted.empty() ? "interrupted" : "completed");
  if (!failure.empty()) summary["error"] = failure;
  if (!interrupted.empty()) summary["error"] = interrupted;
  summary["steps"] = completed;
  summary["wall_time_s"] = elapsed();
  summary["steps_per_second"] = completed / std::max(elapsed(), 1e-9);
  summary["points_per_step"] = points_per_step;
  summary["runtime"] = {{"dtype", exp.runtime.GetString("dtype")},
                        {"threads", torch::get_num_threads()},
                        {"seed", exp.runtime.GetInt("seed")},
                        {"device", exp.runtime.GetString("device")}};
  if (!last_row.empty()) {
    nlohmann::json final_values;
    for (size_t i = 1; i + 1 < columns.size(); ++i) final_values[columns[i]] = last_row[i];
    summary["final"] = final_values;
    summary["best"] = {{"loss", best_loss}, {"step", best_step}};
  }
  if (auto st = WriteAtomically(options.run_dir / "summary.json", summary.dump(2) + "\n");
      !st.ok()) {
    return st;
  }
  if (!failure.empty()) return absl::AbortedError(failure);
  if (!interrupted.empty()) return absl::CancelledError(interrupted);
  return absl::OkStatus();
}

}  // namespace lumpy
