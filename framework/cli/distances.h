#pragma once
// `lumpy distances`: luminosity, angular-diameter and Hubble distances and
// distance moduli at the given redshifts, as CSV on standard output (full
// precision): along the reference ray, or (physical mode) along the sky
// direction RA,DEC. Exit status as the CLI's (exit_status.h).

#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct DistancesOptions {
  std::string experiment;
  std::string checkpoint;          // a run folder, its model.pt or a checkpoint; empty: the experiment's own
  std::string mode;                // reference or physical; empty: physical with a direction, else reference
  std::vector<double> direction;   // RA,DEC in degrees (physical mode); empty: none
  std::vector<double> z;           // redshifts, each finite and > 0
  std::vector<std::string> sets;
};
LUMPY_ENGINE_API int RunDistances(const DistancesOptions& options);

}  // namespace lumpy
