#pragma once
// The load sequence every command shares (run, resume, check, probe,
// distances, mock-sn, report, certify, sky): the built-in plugins (and those
// the file names), the experiment resolved and validated, the runtime applied
// (threads), every plugin constructed; then, for the commands that read a
// metric, the model on the runtime's dtype and device with a checkpoint's
// parameters. A run folder (report, certify, sky) adds which checkpoint.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment.h"
#include "loader/plugin_loader.h"

namespace lumpy {

struct LoadedExperiment {
  // The registry and loader outlive the components their libraries made.
  std::unique_ptr<Registry> registry = std::make_unique<Registry>();
  std::unique_ptr<PluginLoader> loader = std::make_unique<PluginLoader>(*registry);
  std::optional<Experiment> exp;
  Components c;  // points into *exp
  torch::TensorOptions options;  // the runtime's dtype and device
  // Set before loading: kNone where the command never looks from the
  // observer (the probe), so a metric undefined there can still be probed.
  ObserverCheck observer_check = ObserverCheck::kInDomain;
};

// Errors as LoadExperiment's and Instantiate's (InvalidArgument: the file).
absl::Status LoadAndBuild(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                          LoadedExperiment* out);

// The metric on out->options, in eval mode, with the parameters of
// `checkpoint` (a run folder, model.pt or a checkpoint; none if empty).
absl::Status LoadMetric(const std::filesystem::path& checkpoint, LoadedExperiment* out);

// Both: what probe, distances and mock-sn share (the experiment's metric
// with a checkpoint's parameters, if one is given).
absl::Status LoadModel(const std::string& experiment, const std::vector<std::string>& sets,
                       const std::string& checkpoint, LoadedExperiment* out);

struct LoadedRun : LoadedExperiment {
  std::string which;  // final, latest, best, best_step
  std::filesystem::path model_file, training_checkpoint;
  LossTerm* efe = nullptr;
};

// `which` empty: the experiment's [report] checkpoint. Returns the CLI's exit
// status (0, or 2 for a bad folder or checkpoint, with the message printed).
int LoadRun(const std::filesystem::path& run_dir, const std::string& which, LoadedRun* run);

// The last `lines` lines of a run's log that are not progress bars (lines
// starting with '['), oldest first; none if it cannot be read (ReadInputFile).
std::vector<std::string> LastLogLines(const std::filesystem::path& log, size_t lines);

// The experiment's term that fills the probe tables' efe_residual column
// (it says so through ProbeColumnSource, lumpy/report.h), or null.
LossTerm* ProbeColumnTerm(Components& c);

}  // namespace lumpy
