#pragma once
// `lumpy sky RUN_DIR|EXP`: does the metric fit the real, anisotropic sky as
// well as LCDM? Pantheon+ on the standard Hubble-flow selection (zHD,
// z > 0.01, calibrators dropped; diagonal errors, and the full covariance
// when given), the metric's chi^2 along physical rays from the observer's
// frame towards each supernova's sky position (and along the reference ray)
// beside the flat-LCDM best fit on the same selection; per direction bin
// the residuals against LCDM and the expansion rate today (a sky map); and
// where the run held supernovae out of its loss, its chi^2 on them beside
// LCDM fitted on the same training ones. Prints tables and writes
// RUN_DIR/sky_<checkpoint>.json, sky_<checkpoint>_bins.csv and
// sky_<checkpoint>_map.png. An experiment file instead of a run folder: its
// metric as it is (an analytic one), written to ./sky_<name>/.
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
  bool no_figures = false;                   // the sky map's table only
};

// Exit status as the CLI's.
LUMPY_ENGINE_API int RunSky(const SkyOptions& options);

}  // namespace lumpy
