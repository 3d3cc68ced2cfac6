#include "train/runtime.h"

#include "core/threads.h"

namespace lumpy {
namespace {

torch::Dtype ParseDtype(const std::string& name) {
  return name == "float32" ? torch::kFloat32 : torch::kFloat64;
}

}  // namespace

void ApplyRuntime(const Experiment& exp) {
  ConfigureThreads(exp.runtime.GetInt("threads"));
  torch::set_default_dtype(
      caffe2::TypeMeta::fromScalarType(ParseDtype(exp.runtime.GetString("dtype"))));
  torch::manual_seed(static_cast<uint64_t>(exp.runtime.GetInt("seed")));
}

torch::TensorOptions RuntimeOptions(const Experiment& exp) {
  return torch::TensorOptions()
      .dtype(ParseDtype(exp.runtime.GetString("dtype")))
      .device(torch::Device(exp.runtime.GetString("device")));
}

}  // namespace lumpy
