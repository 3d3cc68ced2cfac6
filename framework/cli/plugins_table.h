#pragma once
// `lumpy plugins`: every plugin the default folders (and LUMPY_PLUGIN_PATH)
// hold, by kind, with its library, its doc and a table of its parameters
// (type, default, range, doc); then the parameters of the experiment
// sections the core owns. Exit status as the CLI's (exit_status.h).

#include "engine_export.h"

namespace lumpy {

LUMPY_ENGINE_API int ListPlugins();

}  // namespace lumpy
