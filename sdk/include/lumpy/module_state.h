#pragma once
// What a plugin keeps between steps is the named parameters and buffers of
// its torch::nn::Module: the metric's weights, a curriculum's network, a
// handler's multipliers. Parameters are learned with the model; buffers are
// what the plugin changes itself (ConstraintHandler::update). The engine
// saves every plugin's state into checkpoints and restores it with these two
// functions, which check every name and shape once: a plugin writes no
// state code of its own.

#include <torch/torch.h>

#include <string>

#include "absl/status/status.h"
#include "lumpy/export.h"

namespace lumpy {

// The module's parameters, buffers and submodules, by name (Module::save).
LUMPY_API void SaveModuleState(const torch::nn::Module& module, torch::serialize::OutputArchive& archive);

// Copies the archive's tensors into the module's own (keeping their dtype and
// device, so the optimizer's references stay valid). Refuses a name the
// module has and the archive lacks, a name the archive has and the module
// lacks (unless `shared`: the archive also holds other records beside the
// module's, as a run's model.pt), and a shape that differs; the message
// starts with `what` (e.g. "the handler of loss.wec") and names the key.
LUMPY_API absl::Status LoadModuleState(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                                       const std::string& what, bool shared = false);

}  // namespace lumpy
