#pragma once
// The figures of `lumpy ablate` and `lumpy report`: Python scripts (matplotlib)
// installed in share/lumpy/scripts (or the source tree's scripts/ in a build).

#include <string>
#include <vector>

namespace lumpy {

// Runs scripts/<script> with `args` under Debian's /usr/bin/python3 (where
// python3-matplotlib installs; else python3 on PATH), output to ours.
// Returns false with the reason in `why` if the script is missing or fails.
bool RunFigureScript(const std::string& script, const std::vector<std::string>& args,
                     std::string* why);

}  // namespace lumpy
