#pragma once
// Where the rays traced during one training step went. A domain with
// `ray_points` draws its points from these (docs/physics.md, "Guarding the
// rays"): a constraint is then checked where the rays actually travel, which
// may lie far outside the box the other domains cover.
//
// The engine installs a recorder for the duration of a step's loss; every
// trace (TraceReference, TraceSky) made while it is installed adds the
// straight segments between each ray's consecutive accepted states (t, x, y,
// z) up to where the ray stopped, and apart from those the states a ray
// stopped on because they were bad (non-Lorentzian, singular, non-finite). Without a recorder a trace
// records nothing. One recorder per thread; they nest.
#include <torch/torch.h>

#include <vector>

#include "engine_export.h"

namespace lumpy {

struct RayPositions {
  torch::Tensor segments;  // [K,8] float64, CPU: from (t,x,y,z), to (t,x,y,z); undefined if none
  torch::Tensor bad;   // [B,4] float64, CPU; undefined if none
  bool empty() const { return !segments.defined() && !bad.defined(); }
};

class LUMPY_ENGINE_API RayStateRecorder {
 public:
  RayStateRecorder();
  ~RayStateRecorder();
  RayStateRecorder(const RayStateRecorder&) = delete;
  RayStateRecorder& operator=(const RayStateRecorder&) = delete;

  // Everything recorded so far, concatenated.
  RayPositions positions() const;

  // Whether a recorder is installed on this thread.
  static bool Active();
  // Adds to the thread's current recorder, if any (detached, float64, CPU).
  static void Record(const torch::Tensor& segments, const torch::Tensor& bad);

 private:
  std::vector<torch::Tensor> segments_, bad_;
  RayStateRecorder* previous_;
};

}  // namespace lumpy
