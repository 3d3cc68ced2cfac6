#pragma once
// Parameter declarations (ParamSpec) and validated values (Params).
//
// Every plugin, and every section of the experiment file the core owns,
// declares its keys with ParamSpec. The core validates a TOML table against
// the declaration before anything is constructed, fills in defaults, and hands
// the plugin a Params holding exactly the declared keys with checked values.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "lumpy/export.h"

namespace lumpy {

enum class ParamType { kBool, kInt, kDouble, kString, kDoubleList, kStringList };

// "bool", "int", "float", "string", "float list", "string list".
LUMPY_API const char* ParamTypeName(ParamType type);

using ParamValue = std::variant<bool, int64_t, double, std::string,
                                std::vector<double>, std::vector<std::string>>;

// TOML-like rendering: 1, 0.5, "text", [1, 2], true.
LUMPY_API std::string FormatParamValue(const ParamValue& value);

// Declaration of one key. Built fluently:
//   ParamSpec::Double("mu0", "initial penalty weight").Default(1.0).Greater(0)
class LUMPY_API ParamSpec {
 public:
  static ParamSpec Bool(std::string name, std::string doc);
  static ParamSpec Int(std::string name, std::string doc);
  static ParamSpec Double(std::string name, std::string doc);
  static ParamSpec String(std::string name, std::string doc);
  static ParamSpec DoubleList(std::string name, std::string doc);
  static ParamSpec StringList(std::string name, std::string doc);

  // A key with no default is required, unless it is Optional(): then it may
  // be left out, and Params::Has says whether it was given (for keys whose
  // absence means something no value can say, e.g. "never stop early").
  ParamSpec& Default(ParamValue value);
  ParamSpec& Optional();
  // Numeric bounds (for lists: every element).
  ParamSpec& Greater(double bound);   // > bound
  ParamSpec& AtLeast(double bound);   // >= bound
  ParamSpec& Less(double bound);      // < bound
  ParamSpec& AtMost(double bound);    // <= bound
  // Allowed strings (for string lists: every element).
  ParamSpec& OneOf(std::vector<std::string> choices);
  // Exact list length.
  ParamSpec& Length(size_t n);

  const std::string& name() const { return name_; }
  const std::string& doc() const { return doc_; }
  ParamType type() const { return type_; }
  bool required() const { return !default_.has_value() && !optional_; }
  bool optional() const { return optional_; }
  const std::optional<ParamValue>& default_value() const { return default_; }
  const std::vector<std::string>& choices() const { return choices_; }

  // Human-readable range: "> 0", "[0.05, 0.3]", "one of: a, b", "" if none.
  std::string RangeText() const;

  // Converts a raw value to the declared type where that is lossless (an
  // integer for a float key) and checks range, choices and length. Returns
  // the error message (without the key path), or nullopt if valid.
  std::optional<std::string> Check(ParamValue& value) const;

 private:
  ParamSpec(std::string name, ParamType type, std::string doc);
  std::string BoundsText() const;  // "> 0", "[0.05, 0.3]", ""

  std::string name_;
  ParamType type_;
  std::string doc_;
  std::optional<ParamValue> default_;
  bool optional_ = false;
  std::optional<double> min_, max_;
  bool min_exclusive_ = false, max_exclusive_ = false;
  std::vector<std::string> choices_;
  std::optional<size_t> length_;
};

using ParamSpecs = std::vector<ParamSpec>;

// One declaration from several lists, in order (e.g. a plugin's own keys
// around PhysicalScalar::Specs).
inline ParamSpecs Concat(std::initializer_list<ParamSpecs> lists) {
  ParamSpecs all;
  for (const auto& list : lists) all.insert(all.end(), list.begin(), list.end());
  return all;
}

// Validated values of one table: every declared key is present.
class LUMPY_API Params {
 public:
  void Set(const std::string& name, ParamValue value);
  bool Has(const std::string& name) const;

  // Reading a key the plugin did not declare is a programming error and
  // throws std::logic_error naming the key.
  bool GetBool(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  double GetDouble(const std::string& name) const;
  const std::string& GetString(const std::string& name) const;
  const std::vector<double>& GetDoubleList(const std::string& name) const;
  const std::vector<std::string>& GetStringList(const std::string& name) const;

  const std::map<std::string, ParamValue>& values() const { return values_; }

  // Every declared default, with `overrides` checked against the declaration
  // (unknown key, type, range) exactly as an experiment file is. For tests,
  // benchmarks and programs that build plugins without a file.
  static absl::StatusOr<Params> FromDefaults(const std::vector<ParamSpec>& specs,
                                             std::map<std::string, ParamValue> overrides = {});

 private:
  const ParamValue& At(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

// A plugin's refusal of its own validated values (a combination of keys, a
// data file that does not load), located at one key: the factory returns
//   return lumpy::ParamError("sample_bins", "must be at most bins");
// and the engine reports it at that key's line of the experiment file (a
// key the plugin did not declare is reported at its table). The status is
// InvalidArgument with the message "sample_bins: must be at most bins", so
// it reads the same where there is no file (Registry::Make).
LUMPY_API absl::Status ParamError(const std::string& key, const std::string& message);

// The key and the bare message of a ParamError status; nullopt for any
// other status.
struct ParamErrorInfo {
  std::string key, message;
};
LUMPY_API std::optional<ParamErrorInfo> ParamErrorOf(const absl::Status& status);

// Closest candidate by edit distance, if it is plausibly a typo.
LUMPY_API std::optional<std::string> NearestName(
    const std::string& name, const std::vector<std::string>& candidates);

}  // namespace lumpy
