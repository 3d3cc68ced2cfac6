// Instantiate: the objects an experiment describes, built by their plugins'
// factories from validated values, and the observer's event checked against
// the metric it looks at.

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/config_keys.h"
#include "config/experiment.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace {

template <class T>
absl::StatusOr<std::shared_ptr<T>> Build(const PluginSpec& spec) {
  const auto& factory = std::get<Factory<T>>(spec.entry->factory);
  absl::StatusOr<std::shared_ptr<T>> made;
  try {
    made = factory(spec.params);
  } catch (const std::exception& e) {
    made = absl::InternalError(e.what());
  }
  if (made.ok() && *made == nullptr) made = absl::InternalError("the factory returned nothing");
  if (made.ok()) return made;
  const std::string message(made.status().message());
  if (auto param = ParamErrorOf(made.status())) {
    auto it = spec.param_locations.find(param->key);
    if (it != spec.param_locations.end()) {
      return ConfigError(it->second, KeyPath(spec.key_path, param->key), param->message);
    }
  }
  if (made.status().code() == absl::StatusCode::kInvalidArgument) {
    return ConfigError(spec.location, spec.key_path, message);
  }
  return ConfigError(spec.location, spec.key_path,
                     absl::StrCat(PluginKindName(spec.entry->kind), " \"", spec.entry->name,
                                  "\" could not be constructed: ", message));
}

// The observer's event must lie where the metric is defined: rays start
// there and the field equations take H today there.
absl::Status CheckObserver(const Experiment& exp, MetricModel& model, const Event& observer) {
  torch::NoGradGuard no_grad;
  const ConfigNode* section = exp.resolved.Find("observer");
  const ConfigNode* event = section ? section->Find("event") : nullptr;
  const SourceLocation& where = event ? event->location() : exp.model.location;
  try {
    if (model.in_domain(EventPoint(observer, torch::kFloat64))[0].item<bool>()) return absl::OkStatus();
  } catch (const c10::Error& e) {
    return ConfigError(where, "observer.event",
                       absl::StrCat("metric \"", exp.model.entry->name, "\" could not say whether the observer's ",
                                    "event lies where it is defined: ", e.what_without_backtrace()));
  }
  return ConfigError(where, "observer.event",
                     absl::StrCat("the observer's event (", absl::StrJoin(observer, ", "),
                                  ") lies outside where metric \"", exp.model.entry->name,
                                  "\" is defined (before its big bang, inside a horizon, past a "
                                  "shell crossing): move [observer] event, or change [model]'s parameters"));
}

}  // namespace

Event ObserverEvent(const Experiment& exp) {
  const auto& e = exp.observer.GetDoubleList("event");
  return {e.at(0), e.at(1), e.at(2), e.at(3)};
}

absl::StatusOr<Components> Instantiate(const Experiment& exp, ObserverCheck check) {
  Components c;
  c.observer = ObserverEvent(exp);
  LUMPY_ASSIGN_OR_RETURN(c.model, Build<MetricModel>(exp.model));
  if (check == ObserverCheck::kInDomain) LUMPY_RETURN_IF_ERROR(CheckObserver(exp, *c.model, c.observer));
  for (const auto& d : exp.domains) {
    LUMPY_ASSIGN_OR_RETURN(auto weighter, Build<CurriculumWeighter>(d.curriculum));
    weighter->set_bounds(d.bounds());
    c.domains.push_back({&d, std::move(weighter)});
  }
  for (const auto& l : exp.losses) {
    LossComponent lc;
    lc.spec = &l;
    LUMPY_ASSIGN_OR_RETURN(lc.term, Build<LossTerm>(l.term));
    if (l.handler.entry != nullptr) {
      LUMPY_ASSIGN_OR_RETURN(lc.handler, Build<ConstraintHandler>(l.handler));
    }
    c.losses.push_back(std::move(lc));
  }
  return c;
}

}  // namespace lumpy
