#pragma once
// The experiment as a tree of values that remember where they came from.
//
// TOML files are read into ConfigNode trees (TOML++), `extends` chains are
// deep-merged, `--set` overrides applied and `enabled = false` entries
// dropped. Every node keeps the file, line and column it was written at, so
// that any later error points at the text the user must change.

#include "engine_export.h"
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lumpy {

struct LUMPY_ENGINE_API SourceLocation {
  std::string file;  // a path, or "--set KEY=VALUE" for command-line overrides
  int line = 0;      // 1-based; 0 when there is no position (command line)
  int column = 0;
  std::string ToString() const;  // "file:line:col" or "file"
};

// Formats a configuration error as "FILE:LINE:COL: key.path: message".
LUMPY_ENGINE_API absl::Status ConfigError(const SourceLocation& where, const std::string& key_path,
                         const std::string& message);

class LUMPY_ENGINE_API ConfigNode {
 public:
  enum class Kind { kTable, kArray, kBool, kInt, kDouble, kString };

  ConfigNode() = default;
  static ConfigNode Table(SourceLocation loc = {});
  static ConfigNode Array(SourceLocation loc = {});
  static ConfigNode Bool(bool v, SourceLocation loc = {});
  static ConfigNode Int(int64_t v, SourceLocation loc = {});
  static ConfigNode Double(double v, SourceLocation loc = {});
  static ConfigNode String(std::string v, SourceLocation loc = {});

  Kind kind() const { return kind_; }
  bool is_table() const { return kind_ == Kind::kTable; }
  bool is_array() const { return kind_ == Kind::kArray; }
  const char* kind_name() const;  // "table", "array", "bool", "int", "float", "string"
  // Where the value is written, and where the key that names it is written
  // (the same for array items and the root).
  const SourceLocation& location() const { return location_; }
  const SourceLocation& key_location() const { return key_location_; }
  void set_location(SourceLocation loc) { location_ = std::move(loc); }
  void set_key_location(SourceLocation loc) { key_location_ = std::move(loc); }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_double() const { return double_; }
  const std::string& as_string() const { return string_; }

  // Arrays.
  const std::vector<ConfigNode>& items() const { return items_; }
  std::vector<ConfigNode>& mutable_items() { return items_; }
  void push_back(ConfigNode item) { items_.push_back(std::move(item)); }

  // Tables keep their keys sorted (byte order), whatever order they were
  // written or merged in, so an experiment's domains and loss terms come in
  // one order from a file, an `extends` chain or a resumed run's
  // experiment.toml. mutable_fields() may change values, never keys.
  const std::vector<std::pair<std::string, ConfigNode>>& fields() const { return fields_; }
  std::vector<std::pair<std::string, ConfigNode>>& mutable_fields() { return fields_; }
  const ConfigNode* Find(const std::string& key) const;
  ConfigNode* Find(const std::string& key);
  ConfigNode& Set(const std::string& key, ConfigNode value);  // replaces or inserts in order
  bool Erase(const std::string& key);

  // Value rendered as TOML text (for messages): 1, 0.5, "x", [1, 2], {...}.
  std::string ToText() const;

 private:
  Kind kind_ = Kind::kTable;
  SourceLocation location_;
  SourceLocation key_location_;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<ConfigNode> items_;
  std::vector<std::pair<std::string, ConfigNode>> fields_;
};

// Parses one TOML file. A syntax error is "FILE:LINE:COL: TOML syntax error: ...".
LUMPY_ENGINE_API absl::StatusOr<ConfigNode> ParseTomlFile(const std::filesystem::path& file);

// Parses a file and, recursively, the files it `extends` (a path relative to
// the extending file), deep-merging each file over its base. Missing bases and
// cycles are errors at the `extends` key.
LUMPY_ENGINE_API absl::StatusOr<ConfigNode> LoadConfigTree(const std::filesystem::path& file);

// Deep merge: tables merge key by key, everything else is replaced. When the
// overlay switches a table's `plugin` to another one, the base table's plugin
// parameters are dropped (they belong to the old plugin); its sub-tables and
// the core's keys (enabled; a loss entry's domain and weight) are kept.
LUMPY_ENGINE_API void DeepMerge(ConfigNode& base, const ConfigNode& overlay);

// Applies one "key.path=value" override. The value is read as a TOML value
// (1, 1e-3, true, "x", [1, 2]); a bare word is a string.
LUMPY_ENGINE_API absl::Status ApplyOverride(ConfigNode& root, const std::string& assignment);

// Removes every table that has `enabled = false`, at any depth; removes the
// `enabled = true` markers.
LUMPY_ENGINE_API void DropDisabled(ConfigNode& root);

// TOML text of a tree.
LUMPY_ENGINE_API std::string ToToml(const ConfigNode& root);

}  // namespace lumpy
