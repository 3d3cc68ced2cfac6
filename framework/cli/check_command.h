#pragma once
// `lumpy check`: experiments validated as `lumpy run` would load them (every
// plugin built, the experiment trainable), without running them. Prints one
// line per valid file; exit status the worst of the files' (exit_status.h).

#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct CheckCommandOptions {
  std::vector<std::string> files;
  std::vector<std::string> sets;  // --set, applied to every file
};
LUMPY_ENGINE_API int RunCheck(const CheckCommandOptions& options);

}  // namespace lumpy
