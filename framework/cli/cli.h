#pragma once
// The `lumpy` command line. Exit status: 0 success, 2 usage or configuration
// error (nothing was run), 1 failure at run time.

#include "lumpy/export.h"

namespace lumpy {
LUMPY_API int LumpyMain(int argc, char** argv);
}  // namespace lumpy
