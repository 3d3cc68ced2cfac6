#pragma once
// Where a ray's redshift crosses its targets, between two saved states: a
// cubic model of z along the step, then a safeguarded root search on the
// integrator's dense output.

#include <torch/torch.h>

#include <functional>
#include <utility>
#include <vector>

namespace lumpy::ray {

// The cubic Hermite interpolant through values z0, z1 and slopes d0, d1 at
// t = 0, 1, and its slope: for doubles and for tensors alike.
template <typename T>
T HermiteValue(const T& t, const T& z0, const T& d0, const T& z1, const T& d1) {
  const T t2 = t * t, t3 = t2 * t;
  return (2 * t3 - 3 * t2 + 1) * z0 + (t3 - 2 * t2 + t) * d0 + (-2 * t3 + 3 * t2) * z1 + (t3 - t2) * d1;
}
template <typename T>
T HermiteSlope(const T& t, const T& z0, const T& d0, const T& z1, const T& d1) {
  const T t2 = t * t;
  return (6 * t2 - 6 * t) * (z0 - z1) + (3 * t2 - 4 * t + 1) * d0 + (3 * t2 - 2 * t) * d1;
}

// A cubic model of z along each target's step: the Hermite interpolant of
// z (z0, z1) and dz/dtheta (d0, d1) at the step's ends. z0, d0, z1, d1 are
// [M]; entries may be non-finite where the model is unknown.
struct StepModel {
  torch::Tensor z0, d0, z1, d1;
  torch::Tensor Slope(const torch::Tensor& t) const { return HermiteSlope(t, z0, d0, z1, d1); }
};


// Where the model reaches target (z0 < target <= z1), by safeguarded Newton
// in the bracket: [M], NaN where the model is not finite or does not bracket.
std::vector<double> ModelCrossings(const std::vector<double>& z0, const std::vector<double>& d0,
                                   const std::vector<double>& z1, const std::vector<double>& d1,
                                   const std::vector<double>& target);

// Where z(theta) (theta in [0, 1] along each target's step, z(0) = za < tgt
// <= z(1) = zb) crosses the targets, on detached values: Newton steps with
// the model's slope (the model's own crossing is the first guess), kept in
// the bracket; where the model is unknown or its step leaves the bracket, a
// secant with the Illinois rule: false position, and where the same end of a
// bracket is kept twice in a row its function value is halved (plain false
// position keeps one end for ever on a convex z(theta) and converges only
// linearly: 30 to 50 iterations here); bisection where the secant leaves the
// bracket. Each iteration evaluates z(theta) on the differentiable path with
// theta a leaf, so the last one also gives the slope dz/dtheta and the
// differentiable Newton step after it without another metric evaluation.
// Returns the last evaluated theta (a leaf) and z there (with graph).
std::pair<torch::Tensor, torch::Tensor> Crossings(const std::function<torch::Tensor(const torch::Tensor&)>& z_of,
                                                  const StepModel& model, const std::vector<double>& start,
                                                  const torch::Tensor& tgt, const torch::TensorOptions& options);

}  // namespace lumpy::ray
