#include "cli/study_file.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "config/config_tree.h"
#include "core/name.h"
#include "config/experiment.h"
#include "lumpy/params.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

const ParamSpecs& StudySpecs() {
  static const ParamSpecs specs = {
      ParamSpec::String("results", "the result folders' folder, relative to the study file").Default(std::string("results")),
      ParamSpec::String("claims", "the claim files' folder, relative to the study file").Default(std::string("claims")),
  };
  return specs;
}

const ParamSpecs& RunSpecs() {
  static const ParamSpecs specs = {
      ParamSpec::String("name", "the run's result folder: one path component"),
      ParamSpec::Int("stage", "the post whose claims read this run").AtLeast(0),
      ParamSpec::String("variant", "e.g. corrected, as_run"),
      ParamSpec::Int("seed", "runtime.seed").Default(int64_t{1}).AtLeast(0),
      ParamSpec::String("experiment", "the stage file, relative to the study file"),
      ParamSpec::StringList("set", "overrides, as --set takes them").Default(std::vector<std::string>{}),
      ParamSpec::Bool("sky", "also the real-sky check (lumpy sky) when collected").Default(false),
  };
  return specs;
}

}  // namespace

std::vector<const StudyRun*> Study::RunsOf(int64_t stage, const std::string& variant) const {
  std::vector<const StudyRun*> out;
  for (const auto& r : runs) {
    if (r.stage == stage && r.variant == variant) out.push_back(&r);
  }
  return out;
}

absl::StatusOr<Study> LoadStudy(const fs::path& file) {
  LUMPY_ASSIGN_OR_RETURN(auto root, ParseTomlFile(file));
  LUMPY_ASSIGN_OR_RETURN(auto top, ValidateTable(root, StudySpecs(), "", {"run"}));
  Study study;
  study.file = file;
  const fs::path base = file.parent_path();
  study.results = base / top.GetString("results");
  study.claims = base / top.GetString("claims");
  ConfigNode* runs = root.Find("run");
  if (runs == nullptr || !runs->is_array()) {
    return ConfigError(root.location(), "run", "missing: a study names its runs in [[run]] tables");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < runs->items().size(); ++i) {
    ConfigNode& node = runs->mutable_items()[i];
    const std::string path = absl::StrCat("run[", i, "]");
    LUMPY_ASSIGN_OR_RETURN(auto p, ValidateTable(node, RunSpecs(), path, {}));
    StudyRun r;
    r.name = p.GetString("name");
    r.stage = p.GetInt("stage");
    r.variant = p.GetString("variant");
    r.seed = p.GetInt("seed");
    r.experiment = base / p.GetString("experiment");
    r.set = p.GetStringList("set");
    r.sky = p.GetBool("sky");
    if (!IsOneName(r.name)) {
      return ConfigError(node.Find("name")->location(), path + ".name",
                         absl::StrCat("\"", r.name, "\" is not a name: one path component of printable characters"));
    }
    if (!names.insert(r.name).second) {
      return ConfigError(node.Find("name")->location(), path + ".name", absl::StrCat("a second run named ", r.name));
    }
    if (!fs::is_regular_file(r.experiment)) {
      r.error = std::string(ConfigError(node.Find("experiment")->location(), path + ".experiment",
                                        absl::StrCat(r.experiment.string(), ": no such stage file"))
                                .message());
    }
    study.runs.push_back(r);
  }
  return study;
}

}  // namespace lumpy
