// ValidateTable: one table of an experiment (or of another file the engine
// reads) against its declaration: unknown keys named with the nearest known
// one, values type- and range-checked, defaults filled in.

#include <algorithm>
#include <optional>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/config_keys.h"
#include "config/experiment.h"
#include "core/name.h"

namespace lumpy {

namespace {

ConfigNode ToNode(const ParamValue& value, const SourceLocation& loc) {
  struct Visitor {
    const SourceLocation& loc;
    ConfigNode operator()(bool b) const { return ConfigNode::Bool(b, loc); }
    ConfigNode operator()(int64_t i) const { return ConfigNode::Int(i, loc); }
    ConfigNode operator()(double d) const { return ConfigNode::Double(d, loc); }
    ConfigNode operator()(const std::string& s) const { return ConfigNode::String(s, loc); }
    ConfigNode operator()(const std::vector<double>& v) const {
      ConfigNode a = ConfigNode::Array(loc);
      for (double d : v) a.push_back(ConfigNode::Double(d, loc));
      return a;
    }
    ConfigNode operator()(const std::vector<std::string>& v) const {
      ConfigNode a = ConfigNode::Array(loc);
      for (const auto& s : v) a.push_back(ConfigNode::String(s, loc));
      return a;
    }
  };
  return std::visit(Visitor{loc}, value);
}

// The raw value of a node as the declared type asks; nullopt + message if the
// node cannot be one.
std::optional<ParamValue> ToValue(const ConfigNode& node, ParamType type, std::string* error) {
  using K = ConfigNode::Kind;
  switch (node.kind()) {
    case K::kBool: return ParamValue(node.as_bool());
    case K::kInt: return ParamValue(node.as_int());
    case K::kDouble: return ParamValue(node.as_double());
    case K::kString: return ParamValue(node.as_string());
    case K::kTable:
      *error = absl::StrCat("expected ", ParamTypeName(type), ", got a table");
      return std::nullopt;
    case K::kArray: {
      bool all_numbers = true, all_strings = true;
      for (const auto& i : node.items()) {
        all_numbers &= i.kind() == K::kInt || i.kind() == K::kDouble;
        all_strings &= i.kind() == K::kString;
      }
      if (type == ParamType::kStringList && all_strings) {
        std::vector<std::string> v;
        for (const auto& i : node.items()) v.push_back(i.as_string());
        return ParamValue(v);
      }
      if (type == ParamType::kDoubleList && all_numbers) {
        std::vector<double> v;
        for (const auto& i : node.items()) {
          v.push_back(i.kind() == K::kInt ? static_cast<double>(i.as_int()) : i.as_double());
        }
        return ParamValue(v);
      }
      *error = absl::StrCat("expected ", ParamTypeName(type), ", got ", node.ToText());
      return std::nullopt;
    }
  }
  return std::nullopt;
}

absl::Status UnknownKey(const ConfigNode& node, const std::string& path, const std::string& key,
                        std::vector<std::string> known) {
  std::sort(known.begin(), known.end());
  std::string msg = "unknown key";
  if (auto near = NearestName(key, known)) {
    absl::StrAppend(&msg, "; did you mean \"", *near, "\"? known: ");
  } else {
    absl::StrAppend(&msg, "; known: ");
  }
  absl::StrAppend(&msg, known.empty() ? "none (this table takes no keys)" : absl::StrJoin(known, ", "));
  return ConfigError(node.key_location(), KeyPath(path, key), msg);
}

}  // namespace

absl::StatusOr<Params> ValidateTable(ConfigNode& table, const ParamSpecs& specs,
                                     const std::string& path,
                                     const std::vector<std::string>& others,
                                     std::map<std::string, SourceLocation>* locations) {
  std::vector<std::string> known = KeyNames(specs);
  known.insert(known.end(), others.begin(), others.end());
  for (const auto& [k, v] : table.fields()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return UnknownKey(v, path, k, known);
    }
  }
  Params params;
  for (const auto& spec : specs) {
    const ConfigNode* node = table.Find(spec.name());
    if (node == nullptr) {
      if (spec.required()) {
        return ConfigError(table.location(), KeyPath(path, spec.name()),
                           absl::StrCat("missing required key (", ParamTypeName(spec.type()),
                                        ": ", spec.doc(), ")"));
      }
      if (!spec.default_value()) continue;  // optional: its absence is its meaning
      params.Set(spec.name(), *spec.default_value());
      table.Set(spec.name(), ToNode(*spec.default_value(), table.location()));
      if (locations) (*locations)[spec.name()] = table.location();
      continue;
    }
    std::string error;
    std::optional<ParamValue> value = ToValue(*node, spec.type(), &error);
    if (value) {
      if (auto e = spec.Check(*value)) error = *e;
    }
    if (!error.empty()) return ConfigError(node->location(), KeyPath(path, spec.name()), error);
    if (locations) (*locations)[spec.name()] = node->location();
    params.Set(spec.name(), *value);
  }
  return params;
}

}  // namespace lumpy
