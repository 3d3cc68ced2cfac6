#include "config/experiment.h"

#include "config/config_keys.h"
#include "config/core_params.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lumpy/status_macros.h"
#include "core/name.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// A sub-table; created empty if absent and optional.
absl::StatusOr<ConfigNode*> SubTable(ConfigNode& parent, const std::string& key,
                                     const std::string& path, bool required,
                                     const std::string& hint = "") {
  ConfigNode* node = parent.Find(key);
  if (node == nullptr) {
    if (required) {
      return ConfigError(parent.location(), KeyPath(path, key),
                         absl::StrCat("missing required table", hint.empty() ? "" : "; ", hint));
    }
    return &parent.Set(key, ConfigNode::Table(parent.location()));
  }
  if (!node->is_table()) {
    return ConfigError(node->location(), KeyPath(path, key),
                       absl::StrCat("expected a table, got ", node->ToText()));
  }
  return node;
}

// The plugins an experiment may name: the registry, and where the loader
// looked for them (an unknown name's message lists it).
struct PluginCatalog {
  const Registry& registry;
  std::string searched;
};

absl::StatusOr<PluginSpec> ValidatePlugin(ConfigNode& table, PluginKind kind,
                                          const std::string& path,
                                          const std::vector<std::string>& others,
                                          const PluginCatalog& plugins) {
  std::vector<std::string> known_plugins = plugins.registry.Names(kind);
  const std::string known_text =
      known_plugins.empty() ? "none are loaded" : absl::StrJoin(known_plugins, ", ");
  const ConfigNode* plugin = table.Find("plugin");
  if (plugin == nullptr) {
    return ConfigError(table.location(), KeyPath(path, "plugin"),
                       absl::StrCat("missing required key (string: which ", PluginKindName(kind),
                                    " plugin; known: ", known_text, ")"));
  }
  if (plugin->kind() != ConfigNode::Kind::kString) {
    return ConfigError(plugin->location(), KeyPath(path, "plugin"),
                       absl::StrCat("expected string, got ", plugin->kind_name(), " ",
                                    plugin->ToText()));
  }
  PluginSpec spec;
  spec.key_path = path;
  spec.location = table.location();
  spec.entry = plugins.registry.Find(kind, plugin->as_string());
  if (spec.entry == nullptr) {
    std::string msg =
        absl::StrCat("unknown ", PluginKindName(kind), " \"", plugin->as_string(), "\"");
    if (auto near = NearestName(plugin->as_string(), known_plugins)) {
      absl::StrAppend(&msg, "; did you mean \"", *near, "\"?");
    }
    absl::StrAppend(&msg, " known: ", known_text, " (plugins searched: ", plugins.searched,
                    "; add a folder with LUMPY_PLUGIN_PATH or [plugins] paths = [\"DIR\"])");
    return ConfigError(plugin->key_location(), KeyPath(path, "plugin"), msg);
  }
  std::vector<std::string> all_others = others;
  all_others.push_back("plugin");
  LUMPY_ASSIGN_OR_RETURN(auto params, ValidateTable(table, spec.entry->params, path, all_others, &spec.param_locations));
  spec.params = std::move(params);
  return spec;
}

absl::Status CheckInterval(const ConfigNode& table, const std::string& key, const std::string& path,
                           const std::vector<double>& v) {
  if (v.size() == 2 && !(v[0] < v[1])) {
    return ConfigError(table.Find(key)->location(), KeyPath(path, key),
                       absl::StrCat("must be [min, max] with min < max, got ",
                                    table.Find(key)->ToText()));
  }
  return absl::OkStatus();
}

const std::vector<std::string> kSections = {"runtime", "telemetry", "optimizer", "checkpoint",
                                            "stopping", "certify", "report", "observer", "plugins", "model",
                                            "domains", "loss"};

}  // namespace

DomainBounds DomainSpec::bounds() const {
  DomainBounds b;
  b.lo[0] = strata.empty() ? -std::numeric_limits<double>::infinity() : strata[0].t_min;
  b.hi[0] = strata.empty() ? std::numeric_limits<double>::infinity() : strata[0].t_max;
  for (const auto& s : strata) {
    b.lo[0] = std::min(b.lo[0], s.t_min);
    b.hi[0] = std::max(b.hi[0], s.t_max);
  }
  const std::vector<double>* xyz[] = {&x, &y, &z};
  for (int k = 0; k < 3; ++k) {
    b.lo[k + 1] = xyz[k]->at(0);
    b.hi[k + 1] = xyz[k]->at(1);
  }
  return b;
}

int64_t DomainSpec::total_points() const {
  int64_t n = ray_points;
  for (const auto& s : strata) n += s.count;
  return n;
}

namespace {

// `enabled` must be a bool wherever it is written.
absl::Status CheckEnabledFlags(const ConfigNode& root) {
  std::vector<std::pair<const ConfigNode*, std::string>> stack{{&root, ""}};
  while (!stack.empty()) {
    auto [node, path] = stack.back();
    stack.pop_back();
    for (const auto& [k, v] : node->fields()) {
      if (k == "enabled" && v.kind() != ConfigNode::Kind::kBool) {
        return ConfigError(v.location(), KeyPath(path, k),
                           absl::StrCat("expected bool, got ", v.kind_name(), " ", v.ToText()));
      }
      if (v.is_table()) stack.push_back({&v, KeyPath(path, k)});
    }
  }
  return absl::OkStatus();
}

// The name, description and the sections with only core keys (runtime,
// telemetry, optimizer, checkpoint, stopping, certify, report, plugins).
absl::Status ReadCoreSections(const fs::path& file, ConfigNode& root, Experiment& exp) {
  std::vector<std::string> others = kSections;
  LUMPY_ASSIGN_OR_RETURN(auto top, ValidateTable(root, TopParams(), "", others));
  exp.name = top.GetString("name");
  if (exp.name.empty()) {
    exp.name = file.stem().string();
    root.Set("name", ConfigNode::String(exp.name, root.location()));
  }
  if (!IsOneName(exp.name)) {  // it names the run's folder under runs/
    const ConfigNode* at = root.Find("name");
    return ConfigError(at ? at->location() : root.location(), "name",
                       absl::StrCat("\"", exp.name, "\" is not a name: one path component of printable characters, ",
                                    "not . or .. (it names the run's folder under runs/)"));
  }
  exp.description = top.GetString("description");

  // Sections with only core keys.
  struct Section {
    const char* key;
    const ParamSpecs& specs;
    Params* out;
  };
  Params plugins_params;
  // A patience of 0 meant "never" before it became optional: say so.
  if (const ConfigNode* stopping = root.Find("stopping")) {
    if (const ConfigNode* patience = stopping->Find("patience");
        patience && patience->kind() == ConfigNode::Kind::kInt && patience->as_int() == 0) {
      return ConfigError(patience->location(), "stopping.patience",
                         "must be >= 1, got 0 (leave patience out to never stop early; 0 meant that in "
                         "run folders written before this lumpy)");
    }
  }
  for (const Section& s : {Section{"runtime", RuntimeParams(), &exp.runtime},
                           Section{"telemetry", TelemetryParams(), &exp.telemetry},
                           Section{"optimizer", OptimizerParams(), &exp.optimizer},
                           Section{"checkpoint", CheckpointParams(), &exp.checkpoint},
                           Section{"stopping", StoppingParams(), &exp.stopping},
                           Section{"certify", CertifyParams(), &exp.certify},
                           Section{"report", ReportParams(), &exp.report},
                           Section{"observer", ObserverParams(), &exp.observer},
                           Section{"plugins", PluginsParams(), &plugins_params}}) {
    LUMPY_ASSIGN_OR_RETURN(auto table, SubTable(root, s.key, "", false));
    LUMPY_ASSIGN_OR_RETURN(auto params, ValidateTable(*table, s.specs, s.key, {}));
    *s.out = std::move(params);
  }
  if (exp.optimizer.GetString("schedule") == "warm_restarts" &&
      exp.optimizer.GetDouble("peak_lr") < exp.optimizer.GetDouble("lr")) {
    const ConfigNode* opt = root.Find("optimizer");
    const ConfigNode* peak = opt->Find("peak_lr");
    return ConfigError(peak->location(), "optimizer.peak_lr",
                       absl::StrCat("must be >= optimizer.lr (", FormatParamValue(exp.optimizer.GetDouble("lr")),
                                    ") for warm_restarts, got ",
                                    FormatParamValue(exp.optimizer.GetDouble("peak_lr"))));
  }
  {
    ConfigNode* runtime = root.Find("runtime");
    const std::string& device = exp.runtime.GetString("device");
    const SourceLocation& where =
        runtime->Find("device") ? runtime->Find("device")->location() : runtime->location();
    try {
      torch::Device d(device);
      if (!d.is_cpu() && !d.is_cuda()) {  // "meta" and the like parse, then fail in training
        return ConfigError(where, "runtime.device",
                           absl::StrCat("\"", device, "\" is a device lumpy cannot train on; use cpu, cuda or cuda:N"));
      }
      if (d.is_cuda() && !torch::cuda::is_available()) {
        return ConfigError(where, "runtime.device",
                           "CUDA is not available (this LibTorch build or machine has no GPU); "
                           "use \"cpu\"");
      }
    } catch (const std::exception&) {
      return ConfigError(where, "runtime.device",
                         absl::StrCat("not a device: \"", device, "\"; use cpu, cuda or cuda:N"));
    }
  }
  return absl::OkStatus();
}

// Extra plugin folders, relative to the file that names them, loaded.
absl::Status LoadPluginPaths(ConfigNode& root, PluginLoader& loader) {
  ConfigNode* paths = root.Find("plugins")->Find("paths");
  ConfigNode resolved_paths = ConfigNode::Array(paths->location());
  for (size_t i = 0; i < paths->items().size(); ++i) {
    const ConfigNode& item = paths->items()[i];
    fs::path p(item.as_string());
    if (p.is_relative() && item.location().line > 0) {
      p = fs::path(item.location().file).parent_path() / p;
    }
    std::error_code ec;
    p = fs::absolute(p, ec).lexically_normal();
    if (auto st = loader.LoadPath(p, "[plugins] paths"); !st.ok()) {
      return ConfigError(item.location(), absl::StrCat("plugins.paths[", i, "]"),
                         std::string(st.message()));
    }
    resolved_paths.push_back(ConfigNode::String(p.string(), item.location()));
  }
  *paths = std::move(resolved_paths);
  return absl::OkStatus();
}

// One [domains.NAME] table: its box, strata and curriculum.
absl::StatusOr<DomainSpec> ReadDomain(const std::string& name, ConfigNode& node, const PluginCatalog& plugins) {
  const std::string path = KeyPath("domains", name);
  if (!node.is_table()) {
    return ConfigError(node.location(), path,
                       absl::StrCat("expected a table (a point domain), got ", node.ToText()));
  }
  DomainSpec d;
  d.name = name;
  LUMPY_ASSIGN_OR_RETURN(auto params, ValidateTable(node, DomainParams(), path, {"strata", "curriculum"}));
  d.x = params.GetDoubleList("x");
  d.y = params.GetDoubleList("y");
  d.z = params.GetDoubleList("z");
  for (const char* axis : {"x", "y", "z"}) {
    LUMPY_RETURN_IF_ERROR(CheckInterval(node, axis, path, params.GetDoubleList(axis)));
  }
  d.ray_points = params.GetInt("ray_points");
  const std::string example = absl::StrCat("e.g. [", path, ".strata.all] count = 128, t = [-4.0, 1.0]");
  // Strata are required unless the domain draws its points from the rays.
  ConfigNode* strata = nullptr;
  if (d.ray_points == 0 || node.Find("strata") != nullptr) {
    LUMPY_ASSIGN_OR_RETURN(
        strata, SubTable(node, "strata", path, true,
                         absl::StrCat(example, " (or ", path, ".ray_points = 64: points along the rays)")));
    if (strata->fields().empty()) {
      return ConfigError(strata->location(), KeyPath(path, "strata"),
                         absl::StrCat("needs at least one stratum; ", example));
    }
  }
  std::vector<std::pair<std::string, ConfigNode>> no_strata;
  for (auto& [sname, snode_ref] : strata ? strata->mutable_fields() : no_strata) {
    ConfigNode& snode = snode_ref;
    const std::string spath = KeyPath(KeyPath(path, "strata"), sname);
    if (!snode.is_table()) {
      return ConfigError(snode.location(), spath,
                         absl::StrCat("expected a table (count, t), got ", snode.ToText()));
    }
    LUMPY_ASSIGN_OR_RETURN(auto sp, ValidateTable(snode, StratumParams(), spath, {}));
    LUMPY_RETURN_IF_ERROR(CheckInterval(snode, "t", spath, sp.GetDoubleList("t")));
    d.strata.push_back({sname, sp.GetInt("count"), sp.GetDoubleList("t")[0],
                        sp.GetDoubleList("t")[1]});
  }
  ConfigNode* curriculum = node.Find("curriculum");
  if (curriculum == nullptr) {
    curriculum = &node.Set("curriculum", ConfigNode::Table(node.location()));
    curriculum->Set("plugin", ConfigNode::String("uniform", node.location()));
  } else if (!curriculum->is_table()) {
    return ConfigError(curriculum->location(), KeyPath(path, "curriculum"),
                       absl::StrCat("expected a table, got ", curriculum->ToText()));
  }
  LUMPY_ASSIGN_OR_RETURN(d.curriculum, ValidatePlugin(*curriculum, PluginKind::kCurriculum,
                                                      KeyPath(path, "curriculum"), {}, plugins));
  return d;
}

// What a loss term's entry may hold depends on its plugin's kind: a
// constraint takes a `constraint` handler and no weight, a dataset term no
// domain, an objective or dataset term an optional `weighting`.
struct EntryShape {
  const PluginEntry* entry = nullptr;
  bool is_constraint = false, is_dataset = false;
  const ParamSpecs* specs = nullptr;
  const char* handler_key = nullptr;
  std::vector<std::string> keys;  // the entry's own keys and its handler's table
};

absl::StatusOr<EntryShape> ReadEntryShape(const std::string& path, const ConfigNode& node,
                                          const PluginCatalog& plugins) {
  // The plugin decides which entry keys apply, so find it first.
  const ConfigNode* plugin = node.Find("plugin");
  const PluginEntry* entry =
      plugin && plugin->kind() == ConfigNode::Kind::kString
          ? plugins.registry.Find(PluginKind::kLoss, plugin->as_string())
          : nullptr;
  const bool is_constraint = entry && entry->loss_kind == LossKind::kConstraint;
  const bool is_dataset = entry && entry->loss_kind == LossKind::kDataset;
  const ParamSpecs& entry_specs = is_constraint ? ConstraintEntryParams()
                                  : is_dataset  ? DatasetEntryParams()
                                                : ObjectiveEntryParams();
  if (is_dataset && node.Find("domain")) {
    return ConfigError(node.Find("domain")->key_location(), KeyPath(path, "domain"),
                       absl::StrCat("\"", entry->name,
                                    "\" is a dataset term: it is evaluated once per step on "
                                    "its data, not on a point domain; remove domain"));
  }
  // A constraint's handler is its `constraint` table (required); an
  // objective or a dataset term may take a `weighting` (any handler).
  const char* handler_key = is_constraint ? "constraint" : "weighting";
  const char* wrong_key = is_constraint ? "weighting" : "constraint";
  std::vector<std::string> entry_keys = KeyNames(entry_specs);
  entry_keys.push_back(handler_key);
  if (entry && node.Find(wrong_key)) {
    return ConfigError(
        node.Find(wrong_key)->key_location(), KeyPath(path, wrong_key),
        is_constraint
            ? absl::StrCat("\"", entry->name, "\" is a constraint: its handler is its constraint table (e.g. [",
                           path, ".constraint] plugin = \"homoscedastic\"); a weighting is for objectives and "
                           "dataset terms")
            : absl::StrCat("\"", entry->name, "\" is ", is_dataset ? "a dataset term" : "an objective",
                           ", not a constraint: it takes no constraint handler; scale it with weight, or give "
                           "it a learned weighting with [", path, ".weighting] plugin = \"homoscedastic\""));
  }
  if (entry && is_constraint && node.Find("weight")) {
    return ConfigError(node.Find("weight")->key_location(), KeyPath(path, "weight"),
                       absl::StrCat("\"", entry->name,
                                    "\" is a constraint: its penalty is scaled by its "
                                    "handler, e.g. constraint.weight"));
  }
  EntryShape shape;
  shape.entry = entry;
  shape.is_constraint = is_constraint;
  shape.is_dataset = is_dataset;
  shape.specs = &entry_specs;
  shape.handler_key = handler_key;
  shape.keys = std::move(entry_keys);
  return shape;
}

// One [loss.NAME] table: its term, entry keys and handler.
absl::StatusOr<LossSpec> ReadLossTerm(const std::string& name, ConfigNode& node,
                                      const std::vector<std::string>& domain_names, const PluginCatalog& plugins) {
  const std::string path = KeyPath("loss", name);
  if (!node.is_table()) {
    return ConfigError(node.location(), path,
                       absl::StrCat("expected a table (a loss term), got ", node.ToText()));
  }
  LUMPY_ASSIGN_OR_RETURN(EntryShape shape, ReadEntryShape(path, node, plugins));
  const PluginEntry* entry = shape.entry;
  const bool is_constraint = shape.is_constraint, is_dataset = shape.is_dataset;
  const ParamSpecs& entry_specs = *shape.specs;
  const char* handler_key = shape.handler_key;
  LUMPY_ASSIGN_OR_RETURN(auto term, ValidatePlugin(node, PluginKind::kLoss, path, shape.keys, plugins));
  std::vector<std::string> plugin_keys = KeyNames(entry->params);
  plugin_keys.push_back("plugin");
  plugin_keys.push_back(handler_key);
  LUMPY_ASSIGN_OR_RETURN(auto core, ValidateTable(node, entry_specs, path, plugin_keys));
  LossSpec spec;
  spec.name = name;
  spec.kind = entry->loss_kind;
  spec.term = std::move(term);
  if (!is_dataset) spec.domain = core.GetString("domain");
  if (!is_dataset && std::find(domain_names.begin(), domain_names.end(), spec.domain) == domain_names.end()) {
    std::string msg = absl::StrCat("unknown domain \"", spec.domain, "\"");
    if (auto near = NearestName(spec.domain, domain_names)) {
      absl::StrAppend(&msg, "; did you mean \"", *near, "\"?");
    }
    absl::StrAppend(&msg, domain_names.empty()
                              ? "; no domains are defined (add a [domains.NAME] table)"
                              : absl::StrCat(" known: ", absl::StrJoin(domain_names, ", ")));
    return ConfigError(node.Find("domain")->location(), KeyPath(path, "domain"), msg);
  }
  if (!is_constraint) spec.weight = core.GetDouble("weight");
  if (!is_dataset) spec.handler_on_mean = core.GetString("handler_on") == "mean";
  if (!is_constraint && spec.handler_on_mean && !node.Find(handler_key)) {
    return ConfigError(node.Find("handler_on")->location(), KeyPath(path, "handler_on"),
                       absl::StrCat("\"mean\" gives the term's handler the domain mean, but \"", entry->name,
                                    "\" has none; add [", path, ".weighting] or leave handler_on out"));
  }
  if (is_constraint || node.Find(handler_key)) {
    LUMPY_ASSIGN_OR_RETURN(
        ConfigNode * handler_table,
        SubTable(node, handler_key, path, true,
                 absl::StrCat("\"", entry->name, "\" is a constraint and needs a handler, e.g. [",
                              path, ".constraint] plugin = \"soft_quadratic\"; known: ",
                              absl::StrJoin(plugins.registry.Names(PluginKind::kConstraint), ", "))));
    LUMPY_ASSIGN_OR_RETURN(spec.handler, ValidatePlugin(*handler_table, PluginKind::kConstraint,
                                                        KeyPath(path, handler_key), {}, plugins));
  }
  return spec;
}

}  // namespace

absl::StatusOr<Experiment> LoadExperiment(const fs::path& file,
                                          const std::vector<std::string>& overrides,
                                          PluginLoader& loader, Registry& registry) {
  LUMPY_ASSIGN_OR_RETURN(ConfigNode root, LoadConfigTree(file));
  root.set_location({file.string(), 1, 1});
  for (const auto& o : overrides) {
    LUMPY_RETURN_IF_ERROR(ApplyOverride(root, o));
  }
  LUMPY_RETURN_IF_ERROR(CheckEnabledFlags(root));
  DropDisabled(root);

  Experiment exp;
  exp.file = file;
  LUMPY_RETURN_IF_ERROR(ReadCoreSections(file, root, exp));
  LUMPY_RETURN_IF_ERROR(LoadPluginPaths(root, loader));
  const PluginCatalog plugins{registry, loader.SearchedText()};
  {
    LUMPY_ASSIGN_OR_RETURN(ConfigNode * model,
                           SubTable(root, "model", "", true, "e.g. [model] plugin = \"siren\""));
    LUMPY_ASSIGN_OR_RETURN(exp.model, ValidatePlugin(*model, PluginKind::kMetric, "model", {}, plugins));
  }
  LUMPY_ASSIGN_OR_RETURN(ConfigNode * domains, SubTable(root, "domains", "", false));
  std::vector<std::string> domain_names;
  for (auto& [name, node] : domains->mutable_fields()) {
    LUMPY_ASSIGN_OR_RETURN(DomainSpec domain, ReadDomain(name, node, plugins));
    exp.domains.push_back(std::move(domain));
    domain_names.push_back(name);
  }
  LUMPY_ASSIGN_OR_RETURN(ConfigNode * loss,
                         SubTable(root, "loss", "", true, "e.g. [loss.efe] plugin = \"efe_residual\""));
  if (loss->fields().empty()) {
    return ConfigError(loss->location(), "loss",
                       "the experiment has no loss terms; add one, e.g. [loss.efe] plugin = "
                       "\"efe_residual\"");
  }
  for (auto& [name, node] : loss->mutable_fields()) {
    LUMPY_ASSIGN_OR_RETURN(LossSpec spec, ReadLossTerm(name, node, domain_names, plugins));
    exp.losses.push_back(std::move(spec));
  }
  exp.resolved = root;
  return exp;
}

}  // namespace lumpy
