#pragma once
// A finished (or stopped) run loaded for reading (report, certify, sky): its
// resolved experiment, the components it describes, and the metric with the
// parameters of the chosen checkpoint.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "config/experiment.h"
#include "loader/plugin_loader.h"

namespace lumpy {

struct LoadedRun {
  std::unique_ptr<Registry> registry = std::make_unique<Registry>();
  std::unique_ptr<PluginLoader> loader = std::make_unique<PluginLoader>(*registry);
  std::optional<Experiment> exp;
  Components c;
  torch::TensorOptions options;
  std::string which;  // final, latest, best, best_step
  std::filesystem::path model_file, training_checkpoint;
  LossTerm* efe = nullptr;
};

// `which` empty: the experiment's [report] checkpoint. Returns the CLI's exit
// status (0, or 2 for a bad folder or checkpoint, with the message printed).
int LoadRun(const std::filesystem::path& run_dir, const std::string& which, LoadedRun* run);

}  // namespace lumpy
