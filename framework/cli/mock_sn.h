#pragma once
// `lumpy mock-sn`: a mock supernova catalogue in the Pantheon+ format:
// redshifts log-uniform in [z_min, z_max] (sorted), isotropic sky positions,
// distance moduli from the experiment's metric along the reference ray plus
// Gaussian noise of standard deviation sigma (the file's error column), all
// from one seed. Never overwrites a file; the catalogue is read back before
// success is claimed. Exit status as the CLI's (exit_status.h).

#include <cstdint>
#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct MockSnOptions {
  std::string experiment;
  std::string checkpoint;  // a run folder, its model.pt or a checkpoint; empty: the experiment's own
  std::string out;         // the catalogue to write
  std::vector<std::string> sets;
  int64_t n = 1000;        // supernovae
  uint64_t seed = 1;
  double sigma = 0.15;     // distance-modulus error (mag)
  double zmin = 0.01, zmax = 2.3;
  bool no_noise = false;   // exact distance moduli (sigma still written)
};
LUMPY_ENGINE_API int RunMockSn(const MockSnOptions& options);

}  // namespace lumpy
