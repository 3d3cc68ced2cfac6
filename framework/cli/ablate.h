#pragma once
// `lumpy ablate`: every combination of --vary values (and seeds) of one
// experiment, each a separate `lumpy run` process in its own folder under
// the output folder, then one comparison table (ablation.csv, ablation.md)
// and figure (ablation.png).

#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct AblateOptions {
  std::string experiment;
  std::vector<std::string> sets;    // --set, applied to every variant
  std::vector<std::string> varies;  // "key=v1,v2,..." each
  int seeds = 1;                    // seeds experiment seed, +1, ...
  int jobs = 1;                     // processes at a time
  std::string out;
};

// Exit status as the CLI's: 2 for a usage or configuration error (before
// anything runs), 1 if any variant failed (the table still lists all), 0.
LUMPY_ENGINE_API int RunAblation(const AblateOptions& options);

// "a,[1, 2],\"x,y\"" -> {"a", "[1, 2]", "\"x,y\""}: commas inside brackets,
// braces or quotes do not split.
LUMPY_ENGINE_API std::vector<std::string> SplitValues(const std::string& text);

}  // namespace lumpy
