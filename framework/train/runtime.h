#pragma once
// The [runtime] table applied to the process: threads, default dtype, seed,
// and the tensor options (dtype, device) that every component is moved to.

#include <torch/torch.h>

#include "config/experiment.h"
#include "engine_export.h"

namespace lumpy {

// Applies [runtime]: thread count, default dtype and seed. Call before
// constructing any component.
LUMPY_ENGINE_API void ApplyRuntime(const Experiment& experiment);

LUMPY_ENGINE_API torch::TensorOptions RuntimeOptions(const Experiment& experiment);

}  // namespace lumpy
