#include "cli/plugins_table.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>

#include "cli/exit_status.h"
#include "config/experiment.h"
#include "loader/plugin_loader.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// One row per parameter: name, type, default (or optional/required), range, doc, in aligned columns.
void PrintParams(const ParamSpecs& specs, const std::string& indent) {
  size_t name_w = 4, type_w = 4, def_w = 7, range_w = 5;
  for (const auto& s : specs) {
    name_w = std::max(name_w, s.name().size());
    type_w = std::max(type_w, std::string(ParamTypeName(s.type())).size());
    def_w = std::max(def_w, s.default_value() ? FormatParamValue(*s.default_value()).size() : 8);
    range_w = std::max(range_w, s.RangeText().size());
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - std::min(w, s.size()) + 2, ' '); };
  for (const auto& s : specs) {
    std::cout << indent << pad(s.name(), name_w) << pad(ParamTypeName(s.type()), type_w)
              << pad(s.default_value() ? FormatParamValue(*s.default_value())
                                       : s.optional() ? "optional" : "required",
                     def_w)
              << pad(s.RangeText(), range_w) << s.doc() << "\n";
  }
}

// The plugins of one kind, each with its parameters.
void PrintKind(const Registry& registry, PluginKind kind) {
  std::cout << "\n" << PluginKindName(kind) << " plugins:\n";
  auto entries = registry.List(kind);
  if (entries.empty()) std::cout << "  (none loaded)\n";
  for (const PluginEntry* e : entries) {
    std::cout << "\n  " << e->name;
    if (kind == PluginKind::kLoss) {
      std::cout << (e->loss_kind == LossKind::kConstraint ? "  [constraint: needs a handler]"
                    : e->loss_kind == LossKind::kDataset  ? "  [dataset: no domain]"
                                                          : "  [objective]");
    }
    std::cout << "  (" << fs::path(e->library).filename().string() << ")\n    " << e->doc << "\n";
    if (e->params.empty()) {
      std::cout << "    (no parameters)\n";
    } else {
      PrintParams(e->params, "    ");
    }
  }
}

}  // namespace

int ListPlugins() {
  Registry registry;
  PluginLoader loader(registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  std::cout << "Plugins (default folder " << PluginLoader::DefaultPluginDirectory().string()
            << "; add folders with LUMPY_PLUGIN_PATH or [plugins] paths)\n";
  for (PluginKind kind : {PluginKind::kMetric, PluginKind::kLoss, PluginKind::kConstraint,
                          PluginKind::kCurriculum}) {
    PrintKind(registry, kind);
  }
  std::cout << "\nExperiment sections owned by the core:\n";
  for (const auto& [name, specs] : {std::pair<const char*, const ParamSpecs*>{"runtime", &RuntimeParams()},
                                    {"telemetry", &TelemetryParams()},
                                    {"optimizer", &OptimizerParams()},
                                    {"checkpoint", &CheckpointParams()},
                                    {"stopping", &StoppingParams()},
                                    {"certify", &CertifyParams()},
                                    {"report", &ReportParams()},
                                    {"observer", &ObserverParams()}}) {
    std::cout << "\n  [" << name << "]\n";
    PrintParams(*specs, "    ");
  }
  std::cout << std::flush;
  return kExitOk;
}

}  // namespace lumpy
