#pragma once
// Text as one markdown table cell: '|' escaped, line breaks as spaces (the
// tables lumpy claims and lumpy ablate write).
#include <string>

namespace lumpy {

inline std::string MarkdownCell(std::string s) {
  for (size_t p = s.find('|'); p != std::string::npos; p = s.find('|', p + 2)) s.replace(p, 1, "\\|");
  for (auto& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return s;
}

}  // namespace lumpy
