#pragma once
// A name that becomes a path component (a run's name under runs/, a study's
// result folder): one component of printable characters, never "." or "..",
// at most 200 bytes. A name is a name, never a path.
#include <string>

namespace lumpy {

inline bool IsOneName(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 200) return false;
  for (unsigned char c : s) {
    if (c == '/' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace lumpy
