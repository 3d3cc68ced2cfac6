#pragma once
// The learning-rate schedule of [optimizer] (docs/physics.md, "Optimizer and schedule"):
// constant, or warm restarts ("kicks"): cycle i has length T_i =
// round(cycle_steps * cycle_growth^i); it starts at peak_lr and falls by a
// cosine to lr over the first decay_fraction of the cycle, then stays at lr.
// A pure function of the step, so a resumed run needs no schedule state
// beyond the penalty-coupled factor the trainer keeps.

#include <cstdint>

#include "engine_export.h"
#include "lumpy/params.h"

namespace lumpy {

class LUMPY_ENGINE_API LearningRateSchedule {
 public:
  explicit LearningRateSchedule(const Params& optimizer);
  double At(int64_t step) const;

 private:
  bool warm_restarts_;
  double lr_, peak_, growth_, fraction_;
  int64_t cycle_;
};

}  // namespace lumpy
