#pragma once
// Registry: every plugin's name, kind, documentation, parameter declaration
// and factory. A plugin library's entry point adds its plugins here; the core
// validates an experiment's tables against the declared parameters and only
// then calls the factory with validated values.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lumpy/constraint_handler.h"
#include "lumpy/curriculum_weighter.h"
#include "lumpy/export.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"
#include "lumpy/params.h"

namespace lumpy {

enum class PluginKind { kMetric, kLoss, kConstraint, kCurriculum };
template <class T>
struct PluginKindOf;

// "metric", "loss", "constraint", "curriculum".
LUMPY_API const char* PluginKindName(PluginKind kind);

// A factory receives validated parameters. It may still reject combinations
// of values: return lumpy::ParamError("key", "what is wrong") (params.h),
// and the core points at that key in the file.
template <class T>
using Factory = std::function<absl::StatusOr<std::shared_ptr<T>>(const Params&)>;

// The one-line factory of a plugin class built from its validated
// parameters (or from nothing, if it takes none):
//   registry.AddConstraint("mine", "doc", specs, lumpy::FactoryOf<Mine>());
// Write the lambda yourself when the factory may still refuse the values
// (a data file to load, a combination of keys).
template <class Impl>
auto FactoryOf() {
  return [](const Params& p) {
    if constexpr (std::is_constructible_v<Impl, const Params&>) {
      return std::make_shared<Impl>(p);
    } else {
      (void)p;
      return std::make_shared<Impl>();
    }
  };
}

template <>
struct PluginKindOf<MetricModel> { static constexpr PluginKind value = PluginKind::kMetric; };
template <>
struct PluginKindOf<LossTerm> { static constexpr PluginKind value = PluginKind::kLoss; };
template <>
struct PluginKindOf<ConstraintHandler> { static constexpr PluginKind value = PluginKind::kConstraint; };
template <>
struct PluginKindOf<CurriculumWeighter> { static constexpr PluginKind value = PluginKind::kCurriculum; };

struct LUMPY_API PluginEntry {
  std::string name;
  PluginKind kind;
  std::string doc;
  ParamSpecs params;
  std::string library;  // file it was loaded from ("" for built into the core)
  LossKind loss_kind = LossKind::kObjective;  // losses only
  std::variant<Factory<MetricModel>, Factory<LossTerm>,
               Factory<ConstraintHandler>, Factory<CurriculumWeighter>>
      factory;
};

class LUMPY_API Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each fails with AlreadyExists if the kind already has that name.
  absl::Status AddMetric(std::string name, std::string doc, ParamSpecs params,
                         Factory<MetricModel> factory);
  absl::Status AddLoss(std::string name, std::string doc, LossKind kind, ParamSpecs params,
                       Factory<LossTerm> factory);
  absl::Status AddConstraint(std::string name, std::string doc, ParamSpecs params,
                             Factory<ConstraintHandler> factory);
  absl::Status AddCurriculum(std::string name, std::string doc, ParamSpecs params,
                             Factory<CurriculumWeighter> factory);

  const PluginEntry* Find(PluginKind kind, const std::string& name) const;
  // Sorted by name.
  std::vector<const PluginEntry*> List(PluginKind kind) const;
  std::vector<std::string> Names(PluginKind kind) const;

  // Constructs a plugin from its defaults and `overrides` (checked against
  // its declaration), without an experiment file:
  //   registry.Make<MetricModel>("siren", {{"hidden", int64_t{32}}})
  template <class T>
  absl::StatusOr<std::shared_ptr<T>> Make(const std::string& name,
                                          std::map<std::string, ParamValue> overrides = {}) const {
    const PluginEntry* entry = Find(PluginKindOf<T>::value, name);
    if (entry == nullptr) {
      return absl::NotFoundError(std::string("no ") + PluginKindName(PluginKindOf<T>::value) +
                                 " plugin \"" + name + "\" is loaded");
    }
    auto params = Params::FromDefaults(entry->params, std::move(overrides));
    if (!params.ok()) return params.status();
    return std::get<Factory<T>>(entry->factory)(*params);
  }

  // Runs a plugin library's entry point (lumpy_register_plugin) on this
  // registry: every plugin it adds records `library` as where it came from.
  absl::Status AddFromLibrary(const std::string& library,
                              const std::function<absl::Status(Registry&)>& entry_point);

 private:
  absl::Status Add(PluginEntry entry);
  std::vector<std::unique_ptr<PluginEntry>> entries_;
  std::string current_library_;
};

}  // namespace lumpy
