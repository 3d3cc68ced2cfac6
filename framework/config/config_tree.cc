#include "config/config_tree.h"

#include "core/input_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lumpy/params.h"

namespace lumpy {

namespace fs = std::filesystem;

std::string SourceLocation::ToString() const {
  if (line <= 0) return file;
  return absl::StrCat(file, ":", line, ":", column);
}

absl::Status ConfigError(const SourceLocation& where, const std::string& key_path,
                         const std::string& message) {
  std::string text = where.ToString();
  if (!key_path.empty()) absl::StrAppend(&text, text.empty() ? "" : ": ", key_path);
  return absl::InvalidArgumentError(absl::StrCat(text, ": ", message));
}

ConfigNode ConfigNode::Table(SourceLocation loc) {
  ConfigNode n;
  n.kind_ = Kind::kTable;
  n.location_ = n.key_location_ = std::move(loc);
  return n;
}
ConfigNode ConfigNode::Array(SourceLocation loc) {
  ConfigNode n = Table(std::move(loc));
  n.kind_ = Kind::kArray;
  return n;
}
ConfigNode ConfigNode::Bool(bool v, SourceLocation loc) {
  ConfigNode n = Table(std::move(loc));
  n.kind_ = Kind::kBool;
  n.bool_ = v;
  return n;
}
ConfigNode ConfigNode::Int(int64_t v, SourceLocation loc) {
  ConfigNode n = Table(std::move(loc));
  n.kind_ = Kind::kInt;
  n.int_ = v;
  return n;
}
ConfigNode ConfigNode::Double(double v, SourceLocation loc) {
  ConfigNode n = Table(std::move(loc));
  n.kind_ = Kind::kDouble;
  n.double_ = v;
  return n;
}
ConfigNode ConfigNode::String(std::string v, SourceLocation loc) {
  ConfigNode n = Table(std::move(loc));
  n.kind_ = Kind::kString;
  n.string_ = std::move(v);
  return n;
}

const char* ConfigNode::kind_name() const {
  switch (kind_) {
    case Kind::kTable: return "table";
    case Kind::kArray: return "array";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kDouble: return "float";
    case Kind::kString: return "string";
  }
  return "?";
}

namespace {
// Tables keep their keys sorted (byte order, as TOML++ and the written
// experiment.toml do), so lookups are binary searches and an experiment's
// order of domains and loss terms is the same however it was put together:
// from one file, an `extends` chain, `--set`, or the resolved experiment.toml
// a resume reads back.
template <typename Fields>
auto LowerBound(Fields& fields, const std::string& key) {
  return std::lower_bound(fields.begin(), fields.end(), key,
                          [](const auto& field, const std::string& k) { return field.first < k; });
}
}  // namespace

const ConfigNode* ConfigNode::Find(const std::string& key) const {
  auto it = LowerBound(fields_, key);
  return it != fields_.end() && it->first == key ? &it->second : nullptr;
}
ConfigNode* ConfigNode::Find(const std::string& key) {
  auto it = LowerBound(fields_, key);
  return it != fields_.end() && it->first == key ? &it->second : nullptr;
}
ConfigNode& ConfigNode::Set(const std::string& key, ConfigNode value) {
  auto it = LowerBound(fields_, key);
  if (it != fields_.end() && it->first == key) {
    it->second = std::move(value);
    return it->second;
  }
  return fields_.emplace(it, key, std::move(value))->second;
}
bool ConfigNode::Erase(const std::string& key) {
  auto it = LowerBound(fields_, key);
  if (it == fields_.end() || it->first != key) return false;
  fields_.erase(it);
  return true;
}

std::string ConfigNode::ToText() const {
  switch (kind_) {
    case Kind::kBool: return FormatParamValue(bool_);
    case Kind::kInt: return FormatParamValue(int_);
    case Kind::kDouble: return FormatParamValue(double_);
    case Kind::kString: return FormatParamValue(string_);
    case Kind::kArray: {
      std::vector<std::string> parts;
      for (const auto& i : items_) parts.push_back(i.ToText());
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
    case Kind::kTable: return "a table";
  }
  return "?";
}

namespace {

SourceLocation FromToml(const toml::source_region& region, const std::string& display) {
  return {display, static_cast<int>(region.begin.line), static_cast<int>(region.begin.column)};
}

// Tables and arrays nest at most this deep in an experiment (the deepest
// real one is 4: domains.bulk.strata.early); deeper input is refused before
// it can exhaust the stack.
constexpr int kMaxDepth = 32;

absl::StatusOr<ConfigNode> Convert(const toml::node& node, const std::string& display,
                                   const std::string& key_path, int depth = 0) {
  SourceLocation loc = FromToml(node.source(), display);
  if (depth > kMaxDepth) {
    return ConfigError(loc, key_path.substr(0, 200) + (key_path.size() > 200 ? "..." : ""),
                       absl::StrCat("nested more than ", kMaxDepth, " tables or arrays deep"));
  }
  switch (node.type()) {
    case toml::node_type::table: {
      ConfigNode out = ConfigNode::Table(loc);
      for (auto&& [key, child] : *node.as_table()) {
        std::string k(key.str());
        auto converted = Convert(child, display, key_path.empty() ? k : key_path + "." + k, depth + 1);
        if (!converted.ok()) return converted.status();
        converted->set_key_location(FromToml(key.source(), display));
        out.Set(k, *std::move(converted));
      }
      return out;
    }
    case toml::node_type::array: {
      ConfigNode out = ConfigNode::Array(loc);
      for (const toml::node& item : *node.as_array()) {
        auto converted = Convert(item, display, key_path, depth + 1);
        if (!converted.ok()) return converted.status();
        out.push_back(*std::move(converted));
      }
      return out;
    }
    case toml::node_type::string: return ConfigNode::String(*node.value<std::string>(), loc);
    case toml::node_type::integer: return ConfigNode::Int(*node.value<int64_t>(), loc);
    case toml::node_type::floating_point: return ConfigNode::Double(*node.value<double>(), loc);
    case toml::node_type::boolean: return ConfigNode::Bool(*node.value<bool>(), loc);
    default:
      return ConfigError(loc, key_path, "dates and times are not supported in experiments");
  }
}

absl::StatusOr<ConfigNode> LoadRecursive(const fs::path& display_path,
                                         std::vector<std::string>& chain,
                                         std::vector<std::string>& chain_display) {
  auto tree = ParseTomlFile(display_path);
  if (!tree.ok()) return tree.status();
  const ConfigNode* extends = tree->Find("extends");
  if (extends == nullptr) return tree;
  if (extends->kind() != ConfigNode::Kind::kString) {
    return ConfigError(extends->location(), "extends",
                       absl::StrCat("expected a file name (string), got ", extends->kind_name()));
  }
  fs::path base_display = (display_path.parent_path() / extends->as_string()).lexically_normal();
  std::error_code ec;
  if (!fs::is_regular_file(base_display, ec)) {
    return ConfigError(extends->location(), "extends",
                       absl::StrCat("no such file \"", extends->as_string(), "\" (looked at ",
                                    fs::absolute(base_display, ec).lexically_normal().string(),
                                    ")"));
  }
  const std::string canonical = fs::weakly_canonical(base_display, ec).string();
  for (const auto& c : chain) {
    if (c == canonical) {
      std::vector<std::string> cycle = chain_display;
      cycle.push_back(base_display.string());
      return ConfigError(extends->location(), "extends",
                         absl::StrCat("cycle: ", absl::StrJoin(cycle, " -> ")));
    }
  }
  chain.push_back(canonical);
  chain_display.push_back(base_display.string());
  auto base = LoadRecursive(base_display, chain, chain_display);
  if (!base.ok()) return base.status();
  tree->Erase("extends");
  DeepMerge(*base, *tree);
  base->set_location(tree->location());
  return base;
}

ConfigNode FromTomlValue(const toml::node& node, const SourceLocation& loc, bool* ok) {
  switch (node.type()) {
    case toml::node_type::string: return ConfigNode::String(*node.value<std::string>(), loc);
    case toml::node_type::integer: return ConfigNode::Int(*node.value<int64_t>(), loc);
    case toml::node_type::floating_point: return ConfigNode::Double(*node.value<double>(), loc);
    case toml::node_type::boolean: return ConfigNode::Bool(*node.value<bool>(), loc);
    case toml::node_type::array: {
      ConfigNode out = ConfigNode::Array(loc);
      for (const toml::node& item : *node.as_array()) out.push_back(FromTomlValue(item, loc, ok));
      return out;
    }
    case toml::node_type::table: {
      ConfigNode out = ConfigNode::Table(loc);
      for (auto&& [key, child] : *node.as_table()) {
        out.Set(std::string(key.str()), FromTomlValue(child, loc, ok));
      }
      return out;
    }
    default:
      *ok = false;
      return ConfigNode::String("", loc);
  }
}

void ToTomlNode(const ConfigNode& node, toml::table& parent, const std::string& key);

void AppendArrayItem(const ConfigNode& item, toml::array& array) {
  switch (item.kind()) {
    case ConfigNode::Kind::kBool: array.push_back(item.as_bool()); break;
    case ConfigNode::Kind::kInt: array.push_back(item.as_int()); break;
    case ConfigNode::Kind::kDouble: array.push_back(item.as_double()); break;
    case ConfigNode::Kind::kString: array.push_back(item.as_string()); break;
    case ConfigNode::Kind::kArray: {
      toml::array inner;
      for (const auto& i : item.items()) AppendArrayItem(i, inner);
      array.push_back(std::move(inner));
      break;
    }
    case ConfigNode::Kind::kTable: {
      toml::table inner;
      for (const auto& [k, v] : item.fields()) ToTomlNode(v, inner, k);
      array.push_back(std::move(inner));
      break;
    }
  }
}

void ToTomlNode(const ConfigNode& node, toml::table& parent, const std::string& key) {
  switch (node.kind()) {
    case ConfigNode::Kind::kBool: parent.insert_or_assign(key, node.as_bool()); break;
    case ConfigNode::Kind::kInt: parent.insert_or_assign(key, node.as_int()); break;
    case ConfigNode::Kind::kDouble: parent.insert_or_assign(key, node.as_double()); break;
    case ConfigNode::Kind::kString: parent.insert_or_assign(key, node.as_string()); break;
    case ConfigNode::Kind::kArray: {
      toml::array array;
      for (const auto& i : node.items()) AppendArrayItem(i, array);
      parent.insert_or_assign(key, std::move(array));
      break;
    }
    case ConfigNode::Kind::kTable: {
      toml::table table;
      for (const auto& [k, v] : node.fields()) ToTomlNode(v, table, k);
      parent.insert_or_assign(key, std::move(table));
      break;
    }
  }
}

// Keys the core owns in a plugin table, which survive a switch of `plugin`:
// `enabled` everywhere, and a loss entry's (loss.NAME) domain and weight.
bool IsCoreKey(const std::vector<std::string>& path, const std::string& key) {
  if (key == "plugin" || key == "enabled") return true;
  const bool loss_entry = path.size() == 2 && path[0] == "loss";
  return loss_entry && (key == "domain" || key == "weight");
}

void MergeAt(ConfigNode& base, const ConfigNode& overlay, std::vector<std::string>& path) {
  if (!base.is_table() || !overlay.is_table()) {
    base = overlay;
    return;
  }
  const ConfigNode* new_plugin = overlay.Find("plugin");
  const ConfigNode* old_plugin = base.Find("plugin");
  if (new_plugin && old_plugin && new_plugin->ToText() != old_plugin->ToText()) {
    // Another plugin: the old one's parameters do not carry over; sub-tables
    // (a loss entry's constraint) and the core's keys do.
    ConfigNode kept = ConfigNode::Table(base.location());
    kept.set_key_location(base.key_location());
    for (const auto& [k, v] : base.fields()) {
      if (IsCoreKey(path, k) || v.is_table()) kept.Set(k, v);
    }
    base = std::move(kept);
  }
  for (const auto& [k, v] : overlay.fields()) {
    ConfigNode* existing = base.Find(k);
    if (existing && existing->is_table() && v.is_table()) {
      path.push_back(k);
      MergeAt(*existing, v, path);
      path.pop_back();
    } else {
      base.Set(k, v);
    }
  }
}

}  // namespace

namespace {

// TOML++ parses a dotted key or table header recursively, one level per
// component: a header of a million components overflows its stack before
// Convert could refuse it. So the text is scanned first: a key or header
// with more than kMaxDepth components (dots outside quotes, outside
// multi-line strings) is refused at its line.
absl::Status CheckKeyDepth(const std::string& text, const std::string& display) {
  bool in_multiline = false;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    // Multi-line strings: an odd number of triple quotes on a line toggles.
    int triples = 0;
    for (size_t i = 0; i + 2 < line.size(); ++i) {
      const absl::string_view three = line.substr(i, 3);
      if (three == "\"\"\"" || three == "'''") {
        ++triples;
        i += 2;
      }
    }
    const bool was_in = in_multiline;
    if (triples % 2 == 1) in_multiline = !in_multiline;
    if (was_in) continue;
    // A key line: a table header ("[a.b]", "[[a.b]]") or "a.b = value".
    // Anything else (an array's continuation "1.5, 2.5, ...") has no key.
    const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(line);
    const bool header = !trimmed.empty() && trimmed[0] == '[';
    int dots = 0;
    char quote = 0;
    char stop = 0;
    for (char c : trimmed) {
      if (quote != 0) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '=' || c == '#' || c == ']' || c == ',') {
        stop = c;
        break;
      } else if (c == '.') {
        ++dots;
      }
    }
    const bool key = header ? stop == ']' : stop == '=';
    if (key && dots >= kMaxDepth) {
      return absl::InvalidArgumentError(absl::StrCat(display, ":", line_no, ":1: a key of ", dots + 1,
                                                     " components; tables nest at most ", kMaxDepth, " deep"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ConfigNode> ParseTomlFile(const fs::path& file) {
  const std::string display = file.string();
  if (auto st = CheckInputFile(file, InputKind::kExperiment, "experiment file"); !st.ok()) {
    return absl::InvalidArgumentError(st.message());
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) return absl::InvalidArgumentError(absl::StrCat(display, ": cannot read the experiment file"));
  const std::string text = bytes.str();
  if (auto st = CheckKeyDepth(text, display); !st.ok()) return st;
  try {
    toml::table table = toml::parse(text, display);
    return Convert(table, display, "");
  } catch (const toml::parse_error& e) {
    SourceLocation loc = FromToml(e.source(), display);
    return absl::InvalidArgumentError(
        absl::StrCat(loc.ToString(), ": TOML syntax error: ", std::string(e.description())));
  }
}

absl::StatusOr<ConfigNode> LoadConfigTree(const fs::path& file) {
  std::error_code ec;
  std::vector<std::string> chain{fs::weakly_canonical(file, ec).string()};
  std::vector<std::string> chain_display{file.string()};
  return LoadRecursive(file, chain, chain_display);
}

void DeepMerge(ConfigNode& base, const ConfigNode& overlay) {
  std::vector<std::string> path;
  MergeAt(base, overlay, path);
}

absl::Status ApplyOverride(ConfigNode& root, const std::string& assignment) {
  SourceLocation where{absl::StrCat("--set ", assignment), 0, 0};
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where.file, ": expected KEY=VALUE, e.g. --set runtime.steps=100"));
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  std::vector<std::string> path = absl::StrSplit(key, '.');
  if (path.size() > static_cast<size_t>(kMaxDepth)) {
    return absl::InvalidArgumentError(absl::StrCat("--set ", key.substr(0, 200), key.size() > 200 ? "..." : "",
                                                   ": nested more than ", kMaxDepth, " tables deep"));
  }
  for (const auto& p : path) {
    if (p.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where.file, ": \"", key, "\" is not a key path (a.b.c)"));
    }
  }
  ConfigNode value;
  try {
    toml::table parsed = toml::parse("v = " + text);
    bool ok = true;
    value = FromTomlValue(*parsed.get("v"), where, &ok);
    if (!ok) return ConfigError(where, key, "dates and times are not supported in experiments");
  } catch (const toml::parse_error&) {
    value = ConfigNode::String(text, where);  // a bare word
  }
  ConfigNode overlay = ConfigNode::Table(where);
  ConfigNode* cursor = &overlay;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    cursor = &cursor->Set(path[i], ConfigNode::Table(where));
  }
  cursor->Set(path.back(), std::move(value));
  DeepMerge(root, overlay);
  return absl::OkStatus();
}

void DropDisabled(ConfigNode& root) {
  if (!root.is_table()) return;
  std::vector<std::string> drop;
  for (const auto& [k, v] : root.fields()) {
    if (!v.is_table()) continue;
    const ConfigNode* enabled = v.Find("enabled");
    if (enabled && enabled->kind() == ConfigNode::Kind::kBool && !enabled->as_bool()) {
      drop.push_back(k);
    }
  }
  for (const auto& k : drop) root.Erase(k);
  for (const auto& [k, v] : root.fields()) {
    ConfigNode* child = root.Find(k);
    if (!child->is_table()) continue;
    const ConfigNode* enabled = child->Find("enabled");
    if (enabled && enabled->kind() == ConfigNode::Kind::kBool) child->Erase("enabled");
    DropDisabled(*child);
  }
}

std::string ToToml(const ConfigNode& root) {
  toml::table table;
  for (const auto& [k, v] : root.fields()) ToTomlNode(v, table, k);
  std::ostringstream out;
  out << table << "\n";
  return out.str();
}

}  // namespace lumpy
