#pragma once
// The embedded Dormand-Prince 5(4) pair of the ray integrator: its tableau,
// a stage's state as one autograd node, the 4th-order dense output between
// accepted steps, and the step-size controller.

#include <torch/torch.h>

#include <vector>

namespace lumpy::ray {

// Dormand-Prince 5(4): the matrix a (its last row is the 5th-order solution),
// and e = b5 - b4 for the error estimate.
inline constexpr double kA[7][6] = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
inline const std::vector<double> kE = {35.0 / 384 - 5179.0 / 57600,        0,
                                       500.0 / 1113 - 7571.0 / 16695,     125.0 / 192 - 393.0 / 640,
                                -2187.0 / 6784 + 92097.0 / 339200, 11.0 / 84 - 187.0 / 2100,
                                -1.0 / 40};

// The dense output of Dormand-Prince 5(4) (Hairer, Norsett & Wanner, Solving
// ODEs I, the DOPRI5 code): over an accepted step, the cubic Hermite
// interpolant of (y0, f0), (y1, f1) plus theta^2 (1-theta)^2 h sum_j d_j k_j,
// which makes it 4th order (error O(h^5), as the step's own error estimate)
// where the cubic alone is 3rd order (O(h^4)).
inline constexpr double kDense[7] = {-12715105075.0 / 11282082432.0, 0,
                              87487479700.0 / 32700410799.0, -10690763975.0 / 1880347072.0,
                              701980252875.0 / 199316789632.0, -1453857185.0 / 822651844.0,
                              69997945.0 / 29380423.0};


// A stage: its state and the positions in it.
struct Stage {
  torch::Tensor y, x;
};

// y + h sum_j a_j k_j: the fused node on the CPU (one autograd node with its
// positions y[:, 0:4] as a second output), tensor operations elsewhere.
Stage StageSum(const torch::Tensor& y, double h, const std::vector<torch::Tensor>& k, const double* a,
               bool fused);

// The dense output between (y0, f0) and (y1, f1) over a step h, at theta in
// [0,1] ([N]): the cubic Hermite interpolant plus theta^2 (1-theta)^2 c, with
// c = h sum_j d_j k_j the step's correction (kDense); y, f, c are [N,D], h is
// [N,1].
torch::Tensor DenseOutput(const torch::Tensor& theta, const torch::Tensor& y0,
                          const torch::Tensor& f0, const torch::Tensor& y1,
                          const torch::Tensor& f1, const torch::Tensor& c,
                          const torch::Tensor& h);

// The step size after an accepted step of size h with error err (<= 1):
// h_new = h / quotient. The quotient is the larger of
//   the standard one, err^(1/5) / 0.9, and
//   Gustafsson's predictive one, (h_prev / h) (err^2 / err_prev)^(1/5) / 0.9
//   (h_prev, err_prev: the accepted step before; Hairer & Wanner, Solving
//   ODEs II, IV.8, as in RADAU5),
// between 1/5 and 5, and at least 1 right after a rejected step (no growth,
// as in DOPRI5). Where the problem steepens from step to step (a ray running
// into a big bang: the error of a fixed step grows ~8x per step), the
// standard quotient alone keeps proposing growth, and every other step was
// rejected; the predictive one follows the shrinking steps. Where the steps
// are steady the two agree.
struct AcceptedStep {
  double h = 0, err = 1;
};
double NextStepQuotient(double err, double h, bool after_rejection, AcceptedStep* previous);

}  // namespace lumpy::ray
