#pragma once
// The ray integrator's error control. A component's error is measured against
// atol + rtol m, where m is the largest magnitude of the vector it belongs to
// (in the state before or after the step). The vectors of a ray state
// (geodesic_rhs.h has the layout) are
//   t = x^0;  the spatial position x^1..x^3;  k^0;  the spatial k^1..k^3;
//   each Jacobi vector xi_a and each dxi_a/dl as a whole 4-vector.
// So a component that stays near zero (the time part of a Jacobi vector, or
// the part across the screen of a slightly tilted one) is held to the
// accuracy of its vector, not to atol on its own: D_A comes from the area the
// Jacobi vectors span, and that needs each vector to a relative rtol, not its
// individual coordinate components. Time and space stay apart in x and k, so
// that the distance |x| and the redshift (from k^0) stay accurate relative to
// themselves, also at small z where |x| << t.

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "engine_export.h"

namespace lumpy {

// [begin, end) of the vector that state component i belongs to.
LUMPY_ENGINE_API std::pair<int64_t, int64_t> ErrorVector(int64_t i);

// Each ray's error estimate of a step, max over components of
// |h sum_j e_j k_j| / (atol + rtol m), infinite where a stage derivative is
// not finite. y, y_new: [R,D]; k: the stage derivatives, one per weight in e.
// Plain loops on the CPU (fused), tensor operations elsewhere.
LUMPY_ENGINE_API std::vector<double> ErrorNorms(const torch::Tensor& y, const torch::Tensor& y_new,
                                                const std::vector<torch::Tensor>& k,
                                                const std::vector<double>& e, double h,
                                                double rtol, double atol, bool fused);

// The automatic first step: T rtol^(1/5) with T = min over rays of
// |k| / |dk/dl| (largest components; f = dy/dl at y), the affine time over
// which a ray's momentum changes by itself, at most `span`: the step of a
// 5th-order method whose error relative to the state is about rtol. It
// needs no metric evaluation beyond f (the integrator's first stage). T is
// taken over rays still moving (frozen rays have f = 0).
LUMPY_ENGINE_API double InitialStep(const torch::Tensor& y, const torch::Tensor& f, double rtol,
                                    double span);

}  // namespace lumpy
