#include "cli/run_folder.h"

#include <iostream>
#include <sstream>

#include "cli/exit_status.h"
#include "core/input_file.h"
#include "absl/strings/str_cat.h"
#include "lumpy/report.h"
#include "lumpy/status_macros.h"
#include "cli/probe.h"
#include "train/checkpoint.h"
#include "train/runtime.h"

namespace lumpy {

namespace fs = std::filesystem;

absl::Status LoadAndBuild(const fs::path& file, const std::vector<std::string>& overrides,
                          LoadedExperiment* out) {
  LUMPY_RETURN_IF_ERROR(out->loader->LoadDefaults());
  LUMPY_ASSIGN_OR_RETURN(out->exp, LoadExperiment(file, overrides, *out->loader, *out->registry));
  ApplyRuntime(*out->exp);
  LUMPY_ASSIGN_OR_RETURN(out->c, Instantiate(*out->exp, out->observer_check));
  out->options = RuntimeOptions(*out->exp);
  return absl::OkStatus();
}

absl::Status LoadMetric(const fs::path& checkpoint, LoadedExperiment* out) {
  MetricModel& model = *out->c.model;
  model.to(out->options.device(), out->options.dtype().toScalarType());
  model.eval();
  if (checkpoint.empty()) return absl::OkStatus();
  std::vector<std::pair<std::string, LossTerm*>> terms;
  for (auto& l : out->c.losses) terms.push_back({l.spec->name, l.term.get()});
  std::string note;
  LUMPY_RETURN_IF_ERROR(LoadModelCheckpoint(model, checkpoint, out->exp->model.entry->name, terms, &note));
  if (!note.empty()) std::cerr << "note: " << note << std::endl;
  return absl::OkStatus();
}

absl::Status LoadModel(const std::string& experiment, const std::vector<std::string>& sets,
                       const std::string& checkpoint, LoadedExperiment* out) {
  LUMPY_RETURN_IF_ERROR(LoadAndBuild(experiment, sets, out));
  return LoadMetric(checkpoint, out);
}

// `which` empty: the experiment's [report] checkpoint.
int LoadRun(const fs::path& run_dir, const std::string& which_in, LoadedRun* run) {
  if (!fs::is_regular_file(run_dir / "experiment.toml") || !fs::is_regular_file(run_dir / "metrics.csv")) {
    std::cerr << run_dir.string() << ": not a run folder (it needs the experiment.toml and metrics.csv "
                 "that `lumpy run` writes)" << std::endl;
    return kExitConfig;
  }
  if (int rc = ExitStatus(LoadAndBuild(run_dir / "experiment.toml", {}, run))) return rc;
  // Which model: as asked, else the experiment's [report] checkpoint (the
  // as-run stages draw the best step's model, as the posts' figures did).
  run->which = which_in.empty() ? run->exp->report.GetString("checkpoint") : which_in;
  run->training_checkpoint = run_dir / "checkpoints" / "latest.pt";
  if (run->which == "final") {
    run->model_file = run_dir / "model.pt";
    if (!fs::exists(run->model_file)) {
      // A run still going (or one that failed): its latest checkpoint, said
      // with its step, and what is written from it is named "latest", never
      // "final".
      run->model_file = run_dir / "checkpoints" / "latest.pt";
      run->which = "latest";
      std::string step = "step unknown";
      if (CheckInputFile(run->model_file, InputKind::kCheckpoint, "checkpoint").ok()) {
        try {
          torch::serialize::InputArchive a;
          a.load_from(run->model_file.string());
          torch::Tensor next;
          if (a.try_read("loop_next_step", next)) step = absl::StrCat("step ", next.item<int64_t>() - 1);
        } catch (const c10::Error&) {
        }
      }
      std::cerr << "note: no model.pt (the run has not finished, or failed): using " << run->model_file.string()
                << " (" << step << "); what follows is named \"latest\"" << std::endl;
    }
  } else if (run->which == "latest" || run->which == "best" || run->which == "best_step") {
    run->model_file = run_dir / "checkpoints" / (run->which + ".pt");
    run->training_checkpoint = run->model_file;  // best.pt and best_step.pt hold their curricula too
    if (!fs::exists(run->model_file)) {
      std::cerr << run->model_file.string() << ": not written by this run ("
                << (run->which == "best_step"
                        ? "best_step.pt comes with stopping.best_step_checkpoint = true, at the first checkpoint"
                        : "checkpoints come every checkpoint.every steps and at the end")
                << ")" << std::endl;
      return kExitConfig;
    }
  } else {
    std::cerr << "--checkpoint: final, latest, best or best_step, got " << run->which << std::endl;
    return kExitConfig;
  }
  run->efe = ProbeColumnTerm(run->c);
  return ExitStatus(LoadMetric(run->model_file, run));
}

LossTerm* ProbeColumnTerm(Components& c) {
  for (auto& l : c.losses) {
    if (ProbeColumnOf(*l.term) == "efe_residual") return l.term.get();
  }
  return nullptr;
}

std::vector<std::string> LastLogLines(const fs::path& log, size_t lines) {
  auto text = ReadInputFile(log, InputKind::kRunFile, "run log");
  std::istringstream in(text.ok() ? *text : "");
  std::vector<std::string> kept;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '[') continue;
    kept.push_back(line);
    if (kept.size() > lines) kept.erase(kept.begin());
  }
  return kept;
}

}  // namespace lumpy
