// A handler that breaks the telemetry contract: from its fourth penalty on it
// reports a different name. The engine must stop the run naming it (columns
// are written by position: a changed list would shift every later one).
#include "lumpy/lumpy.h"

namespace {
class Shifty : public lumpy::ConstraintHandler {
 public:
  lumpy::Penalty penalty(const torch::Tensor& v) override {
    ++calls_;
    return {v.square(), v.square().mean()};
  }
  std::vector<std::pair<std::string, double>> telemetry() const override {
    return {{calls_ > 3 ? "renamed" : "calls", static_cast<double>(calls_)}};
  }

 private:
  int calls_ = 0;
};
absl::Status Register(lumpy::Registry& registry) {
  return registry.AddConstraint(
      "shifty_handler", "test: its telemetry name changes after three penalties", {},
      [](const lumpy::Params&) -> absl::StatusOr<std::shared_ptr<lumpy::ConstraintHandler>> {
        return std::make_shared<Shifty>();
      });
}
}  // namespace

LUMPY_PLUGIN(Register)
