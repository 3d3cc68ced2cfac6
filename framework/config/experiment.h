#pragma once
// An experiment: the TOML file resolved (extends, --set, enabled = false),
// validated against the core's own schema and every plugin's declared
// parameters, with defaults filled in. Nothing is constructed or run until
// the whole file is valid.

#include "engine_export.h"
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config_tree.h"
#include "loader/plugin_loader.h"
#include "lumpy/curriculum_weighter.h"
#include "lumpy/registry.h"

namespace lumpy {

// One plugin-bearing table (model, loss term, handler, curriculum).
struct PluginSpec {
  std::string key_path;  // e.g. "loss.wec.constraint"
  const PluginEntry* entry = nullptr;
  Params params;
  SourceLocation location;                                  // the table
  std::map<std::string, SourceLocation> param_locations;    // each key's value
};

struct StratumSpec {
  std::string name;
  int64_t count = 0;
  double t_min = 0, t_max = 0;
};

struct DomainSpec {
  std::string name;
  std::vector<StratumSpec> strata;
  std::vector<double> x, y, z;  // [min, max] each
  // Points drawn each step from where the previous step's rays went
  // (physics/ray_states.h), besides the strata's; 0: none.
  int64_t ray_points = 0;
  PluginSpec curriculum;
  LUMPY_ENGINE_API int64_t total_points() const;
  // The box its points come from, as its curriculum's set_bounds() gets it.
  LUMPY_ENGINE_API DomainBounds bounds() const;
};

struct LossSpec {
  std::string name;
  std::string domain;  // empty for a dataset term (evaluated once per step on no points)
  double weight = 1.0;  // objectives and dataset terms
  LossKind kind = LossKind::kObjective;
  PluginSpec term;
  // The term's handler: a constraint's `constraint` table (required), or an
  // objective's or dataset term's optional `weighting` table (e.g. learned
  // uncertainty weights); handler.entry is null if there is none.
  PluginSpec handler;
  // handler_on = "mean": the handler sees the domain mean of the term
  // (lambda mean(v) + mu/2 mean(v)^2, as the reference's CMB priors), not
  // each point's value. A dataset term's handler always sees its one value.
  bool handler_on_mean = false;
};

struct Experiment {
  std::filesystem::path file;
  std::string name;
  std::string description;
  Params runtime;    // dtype, threads, seed, device, steps
  Params telemetry;  // every, progress
  Params optimizer;  // lr, clip_norm, beta1, beta2, eps, schedule, ...
  Params checkpoint; // every
  Params stopping;   // target_loss, patience, best_step_checkpoint, best_step_model
  Params certify;    // points, on_best, refine_worst, refine_random, refine_iterations
  Params report;     // checkpoint (the default of `lumpy report --checkpoint`)
  Params observer;   // event: where the observer sits (ObserverEvent)
  PluginSpec model;
  std::vector<DomainSpec> domains;
  std::vector<LossSpec> losses;
  ConfigNode resolved;  // the fully resolved tree, defaults included
};

// Reads, resolves and validates. Loads the plugins named in [plugins] paths
// into `registry` through `loader`. Errors are InvalidArgument
// "FILE:LINE:COL: key.path: message".
LUMPY_ENGINE_API absl::StatusOr<Experiment> LoadExperiment(const std::filesystem::path& file,
                                          const std::vector<std::string>& overrides,
                                          PluginLoader& loader, Registry& registry);

// The objects an experiment describes, constructed from validated values.
struct LossComponent {
  const LossSpec* spec = nullptr;
  std::shared_ptr<LossTerm> term;
  std::shared_ptr<ConstraintHandler> handler;  // a constraint's, or an objective's weighting; may be null
};
struct DomainComponent {
  const DomainSpec* spec = nullptr;
  std::shared_ptr<CurriculumWeighter> weighter;
};
struct Components {
  Event observer = kDefaultObserver;  // the experiment's [observer] event
  std::shared_ptr<MetricModel> model;
  std::vector<DomainComponent> domains;
  std::vector<LossComponent> losses;
};

// The experiment's [observer] event (t, x, y, z).
LUMPY_ENGINE_API Event ObserverEvent(const Experiment& experiment);

// Whether Instantiate checks that the observer's event lies inside the
// metric's domain (MetricModel::in_domain): training and every command that
// traces rays need it; the probe, which never looks from the observer, not.
enum class ObserverCheck { kInDomain, kNone };

// Calls every factory. A factory's rejection "key: message" is reported at
// that key's position in the file; an observer's event outside the metric's
// domain at [observer] event.
LUMPY_ENGINE_API absl::StatusOr<Components> Instantiate(const Experiment& experiment,
                                                        ObserverCheck check = ObserverCheck::kInDomain);

// The one validator of a table against its declaration (the experiment's
// sections, every plugin's, and other files the engine reads, such as claim
// files): every key must be declared in `specs` or be one of `others`
// (handled by the caller); values are type- and range-checked; defaults are
// filled into the table. Errors are located "FILE:LINE:COL: path.key: ...".
LUMPY_ENGINE_API absl::StatusOr<Params> ValidateTable(ConfigNode& table, const ParamSpecs& specs,
                                                      const std::string& path,
                                                      const std::vector<std::string>& others,
                                                      std::map<std::string, SourceLocation>* locations = nullptr);

// The core's own sections, declared like plugin parameters (for `lumpy
// plugins` and documentation).
LUMPY_ENGINE_API const ParamSpecs& RuntimeParams();
LUMPY_ENGINE_API const ParamSpecs& TelemetryParams();
LUMPY_ENGINE_API const ParamSpecs& OptimizerParams();
LUMPY_ENGINE_API const ParamSpecs& CheckpointParams();
LUMPY_ENGINE_API const ParamSpecs& StoppingParams();
LUMPY_ENGINE_API const ParamSpecs& CertifyParams();
LUMPY_ENGINE_API const ParamSpecs& ReportParams();
LUMPY_ENGINE_API const ParamSpecs& ObserverParams();

}  // namespace lumpy
