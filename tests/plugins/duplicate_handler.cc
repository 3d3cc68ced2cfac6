// Compiled into two libraries (lumpy_dup_a.so, lumpy_dup_b.so) that register
// the same constraint name, for the loader's duplicate check.
#include "lumpy/lumpy.h"

namespace {
class Zero : public lumpy::ConstraintHandler {
 public:
  lumpy::Penalty penalty(const torch::Tensor& v) override { return {v * 0, (v * 0).mean()}; }
};
absl::Status Register(lumpy::Registry& registry) {
  return registry.AddConstraint(
      "duplicate_handler", "test: registered by dup_a and dup_b", {},
      [](const lumpy::Params&) -> absl::StatusOr<std::shared_ptr<lumpy::ConstraintHandler>> {
        return std::make_shared<Zero>();
      });
}
}  // namespace

LUMPY_PLUGIN(Register)
