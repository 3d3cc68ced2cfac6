#include "lumpy/params.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lumpy {

const char* ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kBool: return "bool";
    case ParamType::kInt: return "int";
    case ParamType::kDouble: return "float";
    case ParamType::kString: return "string";
    case ParamType::kDoubleList: return "float list";
    case ParamType::kStringList: return "string list";
  }
  return "?";
}

namespace {

// The shortest text that reads back as exactly v.
std::string FormatDouble(double v) {
  std::string s;
  for (int precision = 15; precision <= 17; ++precision) {
    std::ostringstream out;
    out.precision(precision);
    out << v;
    s = out.str();
    if (std::strtod(s.c_str(), nullptr) == v) break;
  }
  // Keep it recognisably a float in TOML.
  if (std::isfinite(v) && s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string Quote(const std::string& s) { return absl::StrCat("\"", s, "\""); }

std::string FormatBound(double v) {
  std::ostringstream out;
  out.precision(15);
  out << v;
  return out.str();
}

}  // namespace

std::string FormatParamValue(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return FormatDouble(d); }
    std::string operator()(const std::string& s) const { return Quote(s); }
    std::string operator()(const std::vector<double>& v) const {
      std::vector<std::string> parts;
      for (double d : v) parts.push_back(FormatDouble(d));
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
    std::string operator()(const std::vector<std::string>& v) const {
      std::vector<std::string> parts;
      for (const auto& s : v) parts.push_back(Quote(s));
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
  };
  return std::visit(Visitor{}, value);
}

ParamSpec::ParamSpec(std::string name, ParamType type, std::string doc)
    : name_(std::move(name)), type_(type), doc_(std::move(doc)) {}

ParamSpec ParamSpec::Bool(std::string n, std::string d) { return {std::move(n), ParamType::kBool, std::move(d)}; }
ParamSpec ParamSpec::Int(std::string n, std::string d) { return {std::move(n), ParamType::kInt, std::move(d)}; }
ParamSpec ParamSpec::Double(std::string n, std::string d) { return {std::move(n), ParamType::kDouble, std::move(d)}; }
ParamSpec ParamSpec::String(std::string n, std::string d) { return {std::move(n), ParamType::kString, std::move(d)}; }
ParamSpec ParamSpec::DoubleList(std::string n, std::string d) { return {std::move(n), ParamType::kDoubleList, std::move(d)}; }
ParamSpec ParamSpec::StringList(std::string n, std::string d) { return {std::move(n), ParamType::kStringList, std::move(d)}; }

ParamSpec& ParamSpec::Optional() {
  optional_ = true;
  return *this;
}

ParamSpec& ParamSpec::Default(ParamValue value) {
  // Declarations are code: a default that fails its own checks is a bug.
  if (auto error = Check(value)) {
    throw std::logic_error(absl::StrCat("default of parameter \"", name_, "\": ", *error));
  }
  default_ = std::move(value);
  return *this;
}
ParamSpec& ParamSpec::Greater(double b) { min_ = b; min_exclusive_ = true; return *this; }
ParamSpec& ParamSpec::AtLeast(double b) { min_ = b; min_exclusive_ = false; return *this; }
ParamSpec& ParamSpec::Less(double b) { max_ = b; max_exclusive_ = true; return *this; }
ParamSpec& ParamSpec::AtMost(double b) { max_ = b; max_exclusive_ = false; return *this; }
ParamSpec& ParamSpec::OneOf(std::vector<std::string> c) { choices_ = std::move(c); return *this; }
ParamSpec& ParamSpec::Length(size_t n) { length_ = n; return *this; }

std::string ParamSpec::BoundsText() const {
  if (min_ && max_) {
    return absl::StrCat(min_exclusive_ ? "(" : "[", FormatBound(*min_), ", ", FormatBound(*max_),
                        max_exclusive_ ? ")" : "]");
  }
  if (min_) return absl::StrCat(min_exclusive_ ? "> " : ">= ", FormatBound(*min_));
  if (max_) return absl::StrCat(max_exclusive_ ? "< " : "<= ", FormatBound(*max_));
  return "";
}

std::string ParamSpec::RangeText() const {
  std::vector<std::string> parts;
  if (min_ || max_) parts.push_back(BoundsText());
  if (!choices_.empty()) parts.push_back(absl::StrCat("one of: ", absl::StrJoin(choices_, ", ")));
  if (length_) parts.push_back(absl::StrCat("length ", *length_));
  return absl::StrJoin(parts, "; ");
}

namespace {

const char* ValueTypeName(const ParamValue& v) {
  switch (v.index()) {
    case 0: return "bool";
    case 1: return "int";
    case 2: return "float";
    case 3: return "string";
    case 4: return "float list";
    default: return "string list";
  }
}

}  // namespace

std::optional<std::string> ParamSpec::Check(ParamValue& value) const {
  // Lossless conversions first: an integer where a float is declared.
  if (type_ == ParamType::kDouble && std::holds_alternative<int64_t>(value)) {
    value = static_cast<double>(std::get<int64_t>(value));
  }
  const bool type_ok = (type_ == ParamType::kBool && value.index() == 0) ||
                       (type_ == ParamType::kInt && value.index() == 1) ||
                       (type_ == ParamType::kDouble && value.index() == 2) ||
                       (type_ == ParamType::kString && value.index() == 3) ||
                       (type_ == ParamType::kDoubleList && value.index() == 4) ||
                       (type_ == ParamType::kStringList && value.index() == 5);
  if (!type_ok) {
    return absl::StrCat("expected ", ParamTypeName(type_), ", got ", ValueTypeName(value), " ",
                        FormatParamValue(value));
  }
  auto check_number = [&](double v) -> std::optional<std::string> {
    if (!std::isfinite(v)) return absl::StrCat("must be finite, got ", FormatBound(v));
    bool low = min_ && (min_exclusive_ ? !(v > *min_) : !(v >= *min_));
    bool high = max_ && (max_exclusive_ ? !(v < *max_) : !(v <= *max_));
    if (low || high) {
      return absl::StrCat("must be ", min_ && max_ ? "in " : "", BoundsText(), ", got ",
                          FormatBound(v));
    }
    return std::nullopt;
  };
  auto check_choice = [&](const std::string& s) -> std::optional<std::string> {
    if (choices_.empty() ||
        std::find(choices_.begin(), choices_.end(), s) != choices_.end()) {
      return std::nullopt;
    }
    std::string msg = absl::StrCat("must be one of ", absl::StrJoin(choices_, ", "), ", got \"",
                                   s, "\"");
    if (auto near = NearestName(s, choices_)) absl::StrAppend(&msg, "; did you mean \"", *near, "\"?");
    return msg;
  };
  switch (type_) {
    case ParamType::kInt: return check_number(static_cast<double>(std::get<int64_t>(value)));
    case ParamType::kDouble: return check_number(std::get<double>(value));
    case ParamType::kString: return check_choice(std::get<std::string>(value));
    case ParamType::kDoubleList: {
      const auto& list = std::get<std::vector<double>>(value);
      if (length_ && list.size() != *length_) {
        return absl::StrCat("must have ", *length_, " elements, got ", list.size());
      }
      for (double v : list) {
        if (auto e = check_number(v)) return e;
      }
      return std::nullopt;
    }
    case ParamType::kStringList: {
      const auto& list = std::get<std::vector<std::string>>(value);
      if (length_ && list.size() != *length_) {
        return absl::StrCat("must have ", *length_, " elements, got ", list.size());
      }
      for (const auto& s : list) {
        if (auto e = check_choice(s)) return e;
      }
      return std::nullopt;
    }
    case ParamType::kBool: return std::nullopt;
  }
  return std::nullopt;
}

void Params::Set(const std::string& name, ParamValue value) { values_[name] = std::move(value); }
bool Params::Has(const std::string& name) const { return values_.count(name) > 0; }

const ParamValue& Params::At(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    throw std::logic_error(absl::StrCat("parameter \"", name, "\" was read but never declared"));
  }
  return it->second;
}

template <class T>
static const T& GetAs(const ParamValue& v, const std::string& name) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  throw std::logic_error(absl::StrCat("parameter \"", name, "\" read with the wrong type"));
}

bool Params::GetBool(const std::string& n) const { return GetAs<bool>(At(n), n); }
int64_t Params::GetInt(const std::string& n) const { return GetAs<int64_t>(At(n), n); }
double Params::GetDouble(const std::string& n) const { return GetAs<double>(At(n), n); }
const std::string& Params::GetString(const std::string& n) const { return GetAs<std::string>(At(n), n); }
const std::vector<double>& Params::GetDoubleList(const std::string& n) const {
  return GetAs<std::vector<double>>(At(n), n);
}
const std::vector<std::string>& Params::GetStringList(const std::string& n) const {
  return GetAs<std::vector<std::string>>(At(n), n);
}

absl::StatusOr<Params> Params::FromDefaults(const std::vector<ParamSpec>& specs,
                                            std::map<std::string, ParamValue> overrides) {
  Params params;
  for (const auto& spec : specs) {
    auto it = overrides.find(spec.name());
    if (it == overrides.end()) {
      if (spec.required()) {
        return absl::InvalidArgumentError(absl::StrCat(spec.name(), ": missing required key"));
      }
      if (spec.default_value()) params.Set(spec.name(), *spec.default_value());
      continue;
    }
    ParamValue value = it->second;
    if (auto error = spec.Check(value)) {
      return absl::InvalidArgumentError(absl::StrCat(spec.name(), ": ", *error));
    }
    params.Set(spec.name(), std::move(value));
    overrides.erase(it);
  }
  if (!overrides.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(overrides.begin()->first, ": unknown key"));
  }
  return params;
}

std::optional<std::string> NearestName(const std::string& name,
                                       const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::optional<std::string> best;
  size_t best_d = 0;
  for (const auto& c : candidates) {
    size_t d = distance(name, c);
    if (!best || d < best_d) {
      best = c;
      best_d = d;
    }
  }
  // A typo, not a different word: at most a third of the letters wrong.
  if (best && best_d > 0 && best_d <= std::max<size_t>(2, name.size() / 3)) return best;
  return std::nullopt;
}

namespace {
// The payload of a ParamError: the key, a NUL, the bare message.
constexpr char kParamErrorUrl[] = "type.lumpyspace.org/lumpy.ParamError";
}  // namespace

absl::Status ParamError(const std::string& key, const std::string& message) {
  absl::Status status = absl::InvalidArgumentError(absl::StrCat(key, ": ", message));
  std::string payload = key;
  payload.push_back('\0');
  payload += message;
  status.SetPayload(kParamErrorUrl, absl::Cord(payload));
  return status;
}

std::optional<ParamErrorInfo> ParamErrorOf(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return std::nullopt;
  auto payload = status.GetPayload(kParamErrorUrl);
  if (!payload) return std::nullopt;
  const std::string text(*payload);
  const size_t nul = text.find('\0');
  if (nul == std::string::npos) return std::nullopt;
  return ParamErrorInfo{text.substr(0, nul), text.substr(nul + 1)};
}

}  // namespace lumpy
