#include "lumpy/registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace lumpy {

const char* PluginKindName(PluginKind kind) {
  switch (kind) {
    case PluginKind::kMetric: return "metric";
    case PluginKind::kLoss: return "loss";
    case PluginKind::kConstraint: return "constraint";
    case PluginKind::kCurriculum: return "curriculum";
  }
  return "?";
}

Registry::Registry() = default;
Registry::~Registry() = default;

absl::Status Registry::AddFromLibrary(const std::string& library,
                                      const std::function<absl::Status(Registry&)>& entry_point) {
  // Restored even if the entry point throws: later plugins must not be
  // attributed to this library.
  struct Restore {
    std::string& slot;
    std::string saved;
    ~Restore() { slot = std::move(saved); }
  } restore{current_library_, current_library_};
  current_library_ = library;
  return entry_point(*this);
}

absl::Status Registry::Add(PluginEntry entry) {
  entry.library = current_library_;
  // Keys the core reads from a plugin's table itself.
  std::vector<std::string> reserved = {"plugin", "enabled"};
  if (entry.kind == PluginKind::kLoss) {
    reserved.insert(reserved.end(), {"domain", "weight", "constraint"});
  }
  for (const auto& p : entry.params) {
    if (std::find(reserved.begin(), reserved.end(), p.name()) != reserved.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(PluginKindName(entry.kind), " plugin \"", entry.name, "\" declares \"",
                       p.name(), "\", a key the core reserves; rename the parameter"));
    }
  }
  if (const PluginEntry* existing = Find(entry.kind, entry.name)) {
    return absl::AlreadyExistsError(absl::StrCat(
        PluginKindName(entry.kind), " plugin \"", entry.name, "\" is registered twice: by ",
        existing->library.empty() ? "the core" : existing->library, " and by ",
        entry.library.empty() ? "the core" : entry.library, "; remove one of the two libraries"));
  }
  entries_.push_back(std::make_unique<PluginEntry>(std::move(entry)));
  return absl::OkStatus();
}

absl::Status Registry::AddMetric(std::string name, std::string doc, ParamSpecs params,
                                 Factory<MetricModel> factory) {
  return Add({std::move(name), PluginKind::kMetric, std::move(doc), std::move(params), "",
              LossKind::kObjective, std::move(factory)});
}
absl::Status Registry::AddLoss(std::string name, std::string doc, LossKind kind,
                               ParamSpecs params, Factory<LossTerm> factory) {
  return Add({std::move(name), PluginKind::kLoss, std::move(doc), std::move(params), "", kind,
              std::move(factory)});
}
absl::Status Registry::AddConstraint(std::string name, std::string doc, ParamSpecs params,
                                     Factory<ConstraintHandler> factory) {
  return Add({std::move(name), PluginKind::kConstraint, std::move(doc), std::move(params), "",
              LossKind::kObjective, std::move(factory)});
}
absl::Status Registry::AddCurriculum(std::string name, std::string doc, ParamSpecs params,
                                     Factory<CurriculumWeighter> factory) {
  return Add({std::move(name), PluginKind::kCurriculum, std::move(doc), std::move(params), "",
              LossKind::kObjective, std::move(factory)});
}

const PluginEntry* Registry::Find(PluginKind kind, const std::string& name) const {
  for (const auto& e : entries_) {
    if (e->kind == kind && e->name == name) return e.get();
  }
  return nullptr;
}

std::vector<const PluginEntry*> Registry::List(PluginKind kind) const {
  std::vector<const PluginEntry*> out;
  for (const auto& e : entries_) {
    if (e->kind == kind) out.push_back(e.get());
  }
  std::sort(out.begin(), out.end(),
            [](const PluginEntry* a, const PluginEntry* b) { return a->name < b->name; });
  return out;
}

std::vector<std::string> Registry::Names(PluginKind kind) const {
  std::vector<std::string> out;
  for (const PluginEntry* e : List(kind)) out.push_back(e->name);
  return out;
}

}  // namespace lumpy
