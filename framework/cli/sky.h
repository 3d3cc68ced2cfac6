#pragma once
// `lumpy sky RUN_DIR`: does the trained metric fit the real, anisotropic sky
// as well as LCDM? Pantheon+ on the standard Hubble-flow selection (zHD,
// z > 0.01, calibrators dropped; diagonal errors, and the full covariance
// when given), the metric's chi^2 along physical rays from the observer's
// frame towards each supernova's sky position (and along the reference ray)
// beside the flat-LCDM best fit on the same selection. Prints a table and
// writes RUN_DIR/sky_<checkpoint>.json.
#include <cstdint>
#include <string>

#include "engine_export.h"

namespace lumpy {

struct SkyOptions {
  std::string run_dir;
  std::string checkpoint;                    // empty: the experiment's [report] checkpoint
  std::string data = "Pantheon+SH0ES.dat";
  std::string covariance;                    // optional covariance file (all rows of `data`)
  int64_t bins = 48;                         // physical rays: direction bins; 0: one ray per supernova
  double rtol = 1e-8, atol = 1e-10;
};

// Exit status as the CLI's.
LUMPY_ENGINE_API int RunSky(const SkyOptions& options);

}  // namespace lumpy
