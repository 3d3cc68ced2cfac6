#pragma once
// What the experiment's readers share (config/): a key's dotted path and a
// declaration's key names.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lumpy/params.h"

namespace lumpy {

// "path.key", or "key" at the top.
inline std::string KeyPath(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

// The keys a declaration names, in its order.
inline std::vector<std::string> KeyNames(const ParamSpecs& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) out.push_back(s.name());
  return out;
}

}  // namespace lumpy
