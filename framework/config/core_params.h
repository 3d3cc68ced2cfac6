#pragma once
// The core's own sections of an experiment file, declared as a plugin
// declares its keys (ParamSpec): the public ones ([runtime], [telemetry],
// [optimizer], [checkpoint], [stopping], [certify], [report]) in
// config/experiment.h, the rest here, for the reader (config/experiment.cc).

#include "lumpy/params.h"

namespace lumpy {

const ParamSpecs& TopParams();              // name, description
const ParamSpecs& PluginsParams();          // [plugins]
const ParamSpecs& DomainParams();           // [domain.<name>]
const ParamSpecs& StratumParams();          // [[domain.<name>.strata]]
const ParamSpecs& ObjectiveEntryParams();   // [loss.<name>] of an objective
const ParamSpecs& DatasetEntryParams();     // [loss.<name>] of a dataset term
const ParamSpecs& ConstraintEntryParams();  // [loss.<name>] of a constraint

}  // namespace lumpy
