#pragma once
// A metric judged on supernovae it never saw. A network with thousands of
// parameters beats two-parameter flat LCDM on the data it was trained on;
// the comparison that means something is on held-out supernovae (a term's
// holdout_fraction), with LCDM fitted on the same training set.

#include <nlohmann/json.hpp>

#include "engine_export.h"
#include "lumpy/report.h"

namespace lumpy {

// From a Hubble diagram whose objects say which were held out (none: an
// empty object): per set ("training", "held_out"), the number of objects,
// how many the metric's rays reached, and chi^2 and chi^2/N over the reached
// ones (diagonal errors); "lcdm": flat LCDM fitted on the training objects
// (h0, omega_m), and its chi^2 on each set, over all of it and over the
// objects the metric reached (the like-for-like comparison when some were
// not reached); "delta_chi2_held_out": the metric's minus LCDM's over the
// held-out objects the metric reached.
LUMPY_ENGINE_API nlohmann::json JudgeOnHeldOut(const HubbleDiagram& diagram);

}  // namespace lumpy
