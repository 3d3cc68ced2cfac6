#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace lumpy {

LearningRateSchedule::LearningRateSchedule(const Params& o)
    : warm_restarts_(o.GetString("schedule") == "warm_restarts"),
      lr_(o.GetDouble("lr")),
      peak_(o.GetDouble("peak_lr")),
      growth_(o.GetDouble("cycle_growth")),
      fraction_(o.GetDouble("decay_fraction")),
      cycle_(o.GetInt("cycle_steps")) {}

double LearningRateSchedule::At(int64_t step) const {
  if (!warm_restarts_) return lr_;
  int64_t start = 0;
  double length = static_cast<double>(cycle_);
  int64_t n = std::max<int64_t>(1, std::llround(length));
  while (step >= start + n) {
    start += n;
    length *= growth_;
    n = std::max<int64_t>(1, std::llround(length));
  }
  const double ramp = std::max(1.0, fraction_ * static_cast<double>(n));
  const double p = static_cast<double>(step - start);
  if (p >= ramp) return lr_;
  return lr_ + (peak_ - lr_) * 0.5 * (1.0 + std::cos(M_PI * p / ramp));
}

}  // namespace lumpy
