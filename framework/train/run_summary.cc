// The end of a run (Session::Finish): the final checkpoint and model.pt,
// the held-out certificate and summary.json.

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"
#include "data/held_out.h"
#include "lumpy/build_info.h"
#include "lumpy/geometry.h"
#include "lumpy/report.h"
#include "physics/point_set_context.h"
#include "train/certify.h"
#include "train/checkpoint.h"
#include "train/metrics_log.h"
#include "train/session.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// The learned universe at the observer's event (today: t = 1 by default).
nlohmann::json ObserverToday(MetricModel& model, const Event& observer, const torch::TensorOptions& options) {
  torch::NoGradGuard no_grad;
  try {
    PointSetContext here(model, EventPoint(observer, options));
    Geometry& g = here.geometry(2);
    auto h = g.hubble_rates().to(torch::kCPU, torch::kFloat64);
    return {{"H_x", h[0][0].item<double>()},
            {"H_y", h[0][1].item<double>()},
            {"H_z", h[0][2].item<double>()},
            {"H_mean", g.hubble_mean().item<double>()},
            {"shear_sq", g.shear_squared().item<double>()},
            {"ricci_scalar", g.ricci_scalar().item<double>()},
            {"event", observer},
            {"note", "at the observer's event (t,x,y,z); rates per unit t (1000 Mpc / c)"}};
  } catch (const c10::Error& e) {
    return {{"error", e.what_without_backtrace()}};
  }
}

// Every dataset term that holds supernovae out of its loss, judged on them
// with the final metric (data/held_out.h); nothing if none does.
nlohmann::json HeldOutSupernovae(Components& c, const torch::TensorOptions& options) {
  nlohmann::json out = nlohmann::json::object();
  for (auto& l : c.losses) {
    if (l.spec->kind != LossKind::kDataset) continue;
    try {
      HubbleDiagramSource* source = HubbleDiagramOf(*l.term);
      if (source == nullptr) continue;
      auto diagram = source->hubble_diagram(*c.model, options, c.observer);
      if (!diagram.ok()) continue;
      auto judged = JudgeOnHeldOut(*diagram);
      if (!judged.empty()) out[l.spec->name] = judged;
    } catch (const c10::Error& e) {
      out[l.spec->name] = {{"error", e.what_without_backtrace()}};
    }
  }
  return out;
}

}  // namespace

// The final state: a checkpoint (unless the run failed, so latest.pt keeps
// the last good one), the metric alone in model.pt, and summary.json.
absl::Status Session::Finish(const Ending& ending_in) {
  if (!writer()) {  // rank 0 writes the folder; the others end as it does
    if (!ending_in.failure.ok()) return ending_in.failure;
    if (!ending_in.interrupted.empty()) return absl::CancelledError(ending_in.interrupted);
    return absl::OkStatus();
  }
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
  if (!failed && ending.interrupted.empty()) {
    auto judged = HeldOutSupernovae(c_, tensor_options_);
    if (!judged.empty()) summary["held_out_supernovae"] = judged;
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
  if (!options_.init.empty()) {
    summary["init"] = {{"from", options_.init.string()},
                       {"loaded", "the metric's parameters (and its own physical scalars); the optimizer, handlers, "
                                  "curricula and the terms' physical scalars started fresh"}};
  } else if (previous_summary_.is_object() && previous_summary_.contains("init")) {
    summary["init"] = previous_summary_["init"];
  }
  summary["wall_time_s"] = resumed_wall_time_ + elapsed;
  const int64_t done_here = loop_.next_step - first_step_;
  summary["steps_per_second"] = done_here / std::max(elapsed, 1e-9);
  summary["points_per_step"] = evaluator_->points_per_step();
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
    const auto& columns = metrics_->columns();
    for (size_t i = 1; i + 1 < columns.size(); ++i) final_values[columns[i]] = last_row_[i];
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
  // Which metrics.csv columns are whose telemetry, so that the report draws a
  // plugin's own columns (whatever they are called) with its kind.
  MetricsLog::ColumnOwners owners;
  MetricsLog::Columns(c_, physical_, &owners);
  summary["telemetry_columns"] = {
      {"terms", owners.terms}, {"handlers", owners.handlers}, {"curricula", owners.curricula}};
  if (!physical_.empty()) {
    // After the last update: the values model.pt holds (final.* are the
    // values the last step's loss used).
    nlohmann::json physical;
    for (const auto& p : physical_) physical[p.column] = p.parameter.value.item<double>();
    summary["physical"] = physical;
  }
  if (!failed) summary["observer"] = ObserverToday(*c_.model, c_.observer, tensor_options_);
  if (!best_checkpoint_.is_null()) summary["best_checkpoint"] = best_checkpoint_;
  return summary;
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

}  // namespace lumpy
