#include "lumpy/ray_tracer.h"

#include "physics/ray_read_out.h"
#include "physics/geodesic_rhs.h"
#include "physics/ray_error.h"
#include "physics/ray_states.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lumpy/jet.h"

namespace lumpy {
torch::Tensor InterpLikeJax(const torch::Tensor& x, const torch::Tensor& xp, const torch::Tensor& fp) {
  const int64_t n = xp.size(0);
  TORCH_CHECK(n >= 2 && fp.size(0) == n, "InterpLikeJax: need at least two samples");
  // The interval: jnp.searchsorted(xp, x, side='right') as JAX computes it
  // (a fixed-length binary search, ceil(log2(n+1)) halvings of [0, n): the
  // same answer on sorted samples and JAX's answer on unsorted ones), then
  // clipped to [1, n-1].
  std::vector<double> xs(n);
  {
    auto c = xp.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    std::copy(c.data_ptr<double>(), c.data_ptr<double>() + n, xs.begin());
  }
  auto xc = x.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const int levels = static_cast<int>(std::ceil(std::log2(static_cast<double>(n) + 1)));
  std::vector<int64_t> upper(x.size(0));
  for (int64_t j = 0; j < x.size(0); ++j) {
    const double q = xc.data_ptr<double>()[j];
    int64_t low = 0, high = n;
    for (int level = 0; level < levels; ++level) {
      const int64_t mid = (low + high) / 2;
      if (q < xs[mid]) {
        high = mid;
      } else {
        low = mid;
      }
    }
    upper[j] = std::clamp<int64_t>(high, 1, n - 1);
  }
  auto hi = torch::tensor(upper, torch::kLong).to(x.device()), lo = hi - 1;
  auto x0 = xp.index_select(0, lo), x1 = xp.index_select(0, hi);
  auto f0 = fp.index_select(0, lo), f1 = fp.index_select(0, hi);
  auto dx = x1 - x0;
  // jnp.interp's guard against a zero-width interval: np.spacing(eps).
  const double tiny = xp.scalar_type() == torch::kFloat64 ? std::nextafter(DBL_EPSILON, 1.0) - DBL_EPSILON
                                                          : std::nextafter(FLT_EPSILON, 1.0f) - FLT_EPSILON;
  auto flat = dx.abs() <= tiny;
  auto f = torch::where(flat, f0, f0 + (x - x0) / torch::where(flat, torch::ones_like(dx), dx) * (f1 - f0));
  f = torch::where(x < xp[0], fp[0].expand_as(f), f);
  return torch::where(x > xp[n - 1], fp[n - 1].expand_as(f), f);
}

torch::Tensor ReferenceDistances(const torch::Tensor& z, const torch::Tensor& d, int64_t samples,
                                 const torch::Tensor& target) {
  const int64_t valid = z.size(0);
  TORCH_CHECK(valid >= 1 && valid <= samples && d.size(0) == valid,
              "ReferenceDistances: need 1..samples valid samples");
  auto z_max = z.max(), d_max = d.max();
  auto zs = torch::cat({z, z_max.expand({samples - valid})});
  auto ds = torch::cat({d, d_max.expand({samples - valid})});
  auto read = samples >= 2 ? InterpLikeJax(target, zs, ds) : ds[0].expand_as(target);
  auto short_by = torch::where(z_max < target, 10.0 * (target - z_max), torch::zeros_like(read));
  return read + short_by;
}

namespace {

using torch::indexing::Slice;

// Dormand-Prince 5(4): the matrix a (its last row is the 5th-order solution),
// and e = b5 - b4 for the error estimate.
constexpr double kA[7][6] = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84}};
const std::vector<double> kE = {35.0 / 384 - 5179.0 / 57600,        0,
                                500.0 / 1113 - 7571.0 / 16695,     125.0 / 192 - 393.0 / 640,
                                -2187.0 / 6784 + 92097.0 / 339200, 11.0 / 84 - 187.0 / 2100,
                                -1.0 / 40};

// The dense output of Dormand-Prince 5(4) (Hairer, Norsett & Wanner, Solving
// ODEs I, the DOPRI5 code): over an accepted step, the cubic Hermite
// interpolant of (y0, f0), (y1, f1) plus theta^2 (1-theta)^2 h sum_j d_j k_j,
// which makes it 4th order (error O(h^5), as the step's own error estimate)
// where the cubic alone is 3rd order (O(h^4)).
constexpr double kDense[7] = {-12715105075.0 / 11282082432.0, 0,
                              87487479700.0 / 32700410799.0, -10690763975.0 / 1880347072.0,
                              701980252875.0 / 199316789632.0, -1453857185.0 / 822651844.0,
                              69997945.0 / 29380423.0};

// State layout per ray: x^mu (0..3), k^mu (4..7); with the Jacobi map also
// xi_1 (8..11), dxi_1/dl (12..15), xi_2 (16..19), dxi_2/dl (20..23).
constexpr int64_t kJacobi = 24;
constexpr double kFloat32Rtol = 1e-6, kFloat32Atol = 1e-8;

// The redshift convention of a mode: 1 + z = F(g, k) with F = 1 at the observer.
struct Redshift {
  bool physical = false;
  torch::Tensor e_obs;  // reference mode: (u.k) at the observer, sqrt|g00| k^0 (0-dim)
  // 1 + z at states with metric g [N,4,4] and momentum k [N,4].
  torch::Tensor operator()(const torch::Tensor& g, const torch::Tensor& k) const {
    auto n = torch::sqrt(g.select(1, 0).select(1, 0).abs());
    if (!physical) return n * k.select(1, 0) / e_obs;
    // u^mu = (1/N, 0,0,0): -u.k = -g_0v k^v / N.
    return -(g.select(1, 0) * k).sum(1) / n;
  }
  // d(1+z)/dl along the geodesic, from g, its derivatives dg [N,i,j,rho] =
  // d_rho g_ij, k and dk/dl at the states.
  torch::Tensor Rate(const torch::Tensor& g, const torch::Tensor& dg, const torch::Tensor& k,
                     const torch::Tensor& kdot) const {
    auto g00 = g.select(1, 0).select(1, 0);
    auto n = torch::sqrt(g00.abs());
    auto dg00 = (dg.select(1, 0).select(1, 0) * k).sum(1);  // d g00 / dl
    auto dn = torch::sign(g00) * dg00 / (2.0 * n);
    if (!physical) return (dn * k.select(1, 0) + n * kdot.select(1, 0)) / e_obs;  // f = N k^0 / E_obs
    // f = -a / N, a = g_0v k^v.
    auto a = (g.select(1, 0) * k).sum(1);
    auto da = torch::einsum("rvp,rp,rv->r", {dg.select(1, 0), k, k}) + (g.select(1, 0) * kdot).sum(1);
    return -(da * n - a * dn) / n.square();
  }
};

struct Rhs {
  torch::Tensor dy;  // [R,D]
  torch::Tensor g;   // [R,4,4] at the state
  torch::Tensor dg;  // [R,4,4,4] at the state
};

// dy/dl at the states y (geodesic_rhs.h has the formulas); rays not alive
// ([R] bool, or undefined: all) get dy = 0, and g = dg = 0. The metric is
// evaluated at the live rays only: once rays stop (their targets passed, or
// a singularity met) the batch the jet sees shrinks with them. x: the
// positions y[:, 0:4] where the caller has them as a tensor of their own.
Rhs Derivative(MetricModel& metric, const torch::Tensor& y, bool fused,
               const torch::Tensor& alive = {}, const torch::Tensor& x = {}) {
  const int64_t order = y.size(1) == kJacobi ? 2 : 1;
  const int64_t live = alive.defined() ? alive.sum().item<int64_t>() : y.size(0);
  if (live == y.size(0)) {
    Jet jet = metric.jet(x.defined() ? x : y.narrow(1, 0, 4), order);
    return {GeodesicRhs(y, jet, fused), jet.g, jet.dg};
  }
  auto idx = alive.nonzero().squeeze(1).to(y.device());
  auto yl = y.index_select(0, idx);
  Jet jet = metric.jet(yl.narrow(1, 0, 4), order);
  auto dy = GeodesicRhs(yl, jet, fused);
  auto widen = [&](const torch::Tensor& t) {
    auto sizes = t.sizes().vec();
    sizes[0] = y.size(0);
    return torch::zeros(sizes, t.options()).index_copy(0, idx, t);
  };
  return {widen(dy), widen(jet.g), widen(jet.dg)};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A Runge-Kutta stage's state y + h sum_j a_j k_j, and its positions (the
// state's first 4 columns, which the jet takes) as a second output, in one
// autograd node: the tensor form is two operations per term and a slice,
// each paying LibTorch's dispatch on a state of a few hundred numbers, and
// each a node of the backward pass. The adjoint, with g the state's gradient
// plus the positions' in its first 4 columns: dL/dy = g, dL/dk_j = h a_j g.
struct StageState : public torch::autograd::Function<StageState> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& y, torch::TensorList k,
                               std::vector<double> weights) {
    auto out = y.clone(at::MemoryFormat::Contiguous);
    auto x = torch::empty({y.size(0), 4}, y.options());
    std::vector<torch::Tensor> kc;
    for (const auto& kj : k) kc.push_back(kj.contiguous());
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "stage_state", [&] {
      scalar_t* o = out.data_ptr<scalar_t>();
      const int64_t n = out.numel(), dim = out.size(1);
      for (size_t j = 0; j < kc.size(); ++j) {
        if (weights[j] == 0) continue;
        const scalar_t w = static_cast<scalar_t>(weights[j]);
        const scalar_t* kj = kc[j].data_ptr<scalar_t>();
        for (int64_t i = 0; i < n; ++i) o[i] += w * kj[i];
      }
      scalar_t* xp = x.data_ptr<scalar_t>();
      for (int64_t r = 0; r < out.size(0); ++r)
        for (int64_t i = 0; i < 4; ++i) xp[r * 4 + i] = o[r * dim + i];
    });
    ctx->saved_data["weights"] = weights;
    return {out, x};
  }
  // The stages' gradients are written into one buffer and handed out as its
  // rows: one allocation instead of an operation per stage.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto weights = ctx->saved_data["weights"].toDoubleVector();
    const auto& gy = grads[0];
    const auto& gx = grads[1];
    TORCH_CHECK(gy.defined(), "ray tracer: a stage's positions were used without its state");
    const int64_t rays = gy.size(0), dim = gy.size(1);
    auto gyc = gy.contiguous();
    auto gxc = gx.defined() ? gx.contiguous() : torch::Tensor();
    auto rows = torch::empty({static_cast<int64_t>(weights.size()) + 1, rays, dim}, gy.options());
    AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "stage_state_backward", [&] {
      const scalar_t* a = gyc.data_ptr<scalar_t>();
      const scalar_t* b = gxc.defined() ? gxc.data_ptr<scalar_t>() : nullptr;
      scalar_t* g = rows.data_ptr<scalar_t>();  // row 0: dL/dy
      const int64_t n = rays * dim;
      for (int64_t r = 0; r < rays; ++r)
        for (int64_t i = 0; i < dim; ++i)
          g[r * dim + i] = b != nullptr && i < 4 ? a[r * dim + i] + b[r * 4 + i] : a[r * dim + i];
      for (size_t j = 0; j < weights.size(); ++j) {
        const scalar_t w = static_cast<scalar_t>(weights[j]);
        for (int64_t i = 0; i < n; ++i) g[(j + 1) * n + i] = g[i] * w;
      }
    });
    variable_list out = {rows.select(0, 0)};
    for (size_t j = 0; j < weights.size(); ++j) {
      out.push_back(weights[j] == 0 ? torch::Tensor() : rows.select(0, static_cast<int64_t>(j) + 1));
    }
    out.push_back(torch::Tensor());
    return out;
  }
};

// A stage: its state and the positions in it.
struct Stage {
  torch::Tensor y, x;
};

// y + h sum_j a_j k_j: the fused node on the CPU, tensor operations elsewhere.
Stage StageSum(const torch::Tensor& y, double h, const std::vector<torch::Tensor>& k, const double* a,
               bool fused) {
  std::vector<double> w(k.size());
  for (size_t j = 0; j < k.size(); ++j) w[j] = h * a[j];
  if (RayFusedApplies(y, fused)) {
    auto out = StageState::apply(y, torch::TensorList(k), w);
    return {out[0], out[1]};
  }
  auto out = y;
  for (size_t j = 0; j < k.size(); ++j) {
    if (w[j] != 0) out = out + w[j] * k[j];
  }
  return {out, out.narrow(1, 0, 4)};
}

// The dense output between (y0, f0) and (y1, f1) over a step h, at theta in
// [0,1] ([N]): the cubic Hermite interpolant plus theta^2 (1-theta)^2 c, with
// c = h sum_j d_j k_j the step's correction (kDense); y, f, c are [N,D], h is
// [N,1].
torch::Tensor DenseOutput(const torch::Tensor& theta, const torch::Tensor& y0,
                          const torch::Tensor& f0, const torch::Tensor& y1,
                          const torch::Tensor& f1, const torch::Tensor& c,
                          const torch::Tensor& h) {
  auto t = theta.view({-1, 1});
  auto t2 = t * t, t3 = t2 * t;
  return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * h * f0 + (-2 * t3 + 3 * t2) * y1 +
         (t3 - t2) * h * f1 + (t2 - 2 * t3 + t2 * t2) * c;
}

// det g < 0 with a positive-definite spatial metric: exactly one negative
// eigenvalue. [R,4,4] -> per ray, on detached float64 copies (the leading
// minors of the spatial block, and det g by cofactors).
std::vector<char> Lorentzian(const torch::Tensor& g_in) {
  auto g = g_in.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t n = g.size(0);
  std::vector<char> out(n);
  const double* p = g.data_ptr<double>();
  for (int64_t r = 0; r < n; ++r) {
    const double* m = p + 16 * r;
    auto at = [&](int i, int j) { return m[4 * i + j]; };
    auto det3 = [&](int a, int b, int c, int i, int j, int k) {  // rows a,b,c; columns i,j,k
      return at(a, i) * (at(b, j) * at(c, k) - at(b, k) * at(c, j)) -
             at(a, j) * (at(b, i) * at(c, k) - at(b, k) * at(c, i)) +
             at(a, k) * (at(b, i) * at(c, j) - at(b, j) * at(c, i));
    };
    const double det4 = at(0, 0) * det3(1, 2, 3, 1, 2, 3) - at(0, 1) * det3(1, 2, 3, 0, 2, 3) +
                        at(0, 2) * det3(1, 2, 3, 0, 1, 3) - at(0, 3) * det3(1, 2, 3, 0, 1, 2);
    const double minor2 = at(1, 1) * at(2, 2) - at(1, 2) * at(2, 1);
    out[r] = det4 < 0 && at(1, 1) > 0 && minor2 > 0 && det3(1, 2, 3, 1, 2, 3) > 0;
  }
  return out;
}

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
double NextStepQuotient(double err, double h, bool after_rejection, AcceptedStep* previous) {
  double quotient = std::pow(std::max(err, 1e-10), 0.2) / 0.9;
  if (previous->h != 0) {
    quotient = std::max(quotient, (previous->h / h) * std::pow(err * err / previous->err, 0.2) / 0.9);
  }
  quotient = std::clamp(quotient, 0.2, 5.0);
  if (after_rejection) quotient = std::max(quotient, 1.0);
  *previous = {h, std::max(1e-2, err)};
  return quotient;
}

// The integrated paths of all rays: S saved states (with graph).
struct Paths {
  std::vector<torch::Tensor> y, f;  // S x [R,D]: the states and dy/dl there
  std::vector<torch::Tensor> g, dg;  // S x [R,4,4], [R,4,4,4]: the metric and its derivatives
                                     // there (detached; 0 for rays stopped before)
  std::vector<torch::Tensor> c;     // S x [R,D]: the dense output's correction of the step
                                    // ending at each state (0 at the first)
  std::vector<double> lambda;       // [S]
  std::vector<std::vector<double>> z;  // [S][R] detached redshifts
  std::vector<int64_t> last;        // per ray: the last saved index valid for read-out
  RayStop stop;
};

// For a recorder (ray_states.h): each ray's segments between consecutive
// states up to its last valid one, and the bad states rays stopped on.
void RecordPositions(const std::vector<torch::Tensor>& ys, const Paths& p) {
  torch::NoGradGuard no_grad;
  auto x = torch::stack(ys, 0).narrow(2, 0, 4).detach().to(torch::kCPU, torch::kFloat64);  // [S,R,4]
  const int64_t s = x.size(0);
  torch::Tensor segments;
  if (s > 1) {
    auto end = torch::arange(1, s, torch::kInt64).unsqueeze(1);                       // [S-1,1]
    auto valid = end <= torch::tensor(p.last, torch::kInt64).unsqueeze(0);             // [S-1,R]
    segments = torch::cat({x.narrow(0, 0, s - 1), x.narrow(0, 1, s - 1)}, 2).index({valid});  // [K,8]
  }
  torch::Tensor bad;
  if (!p.stop.bad.empty()) {
    std::vector<double> flat;
    for (const auto& b : p.stop.bad) flat.insert(flat.end(), b.x.begin(), b.x.end());
    bad = torch::tensor(flat, torch::kFloat64).view({-1, 4});
  }
  RayStateRecorder::Record(segments, bad);
}

// The adaptive Dormand-Prince integration of a batch of rays, and the state
// its steps share: which rays are alive, the current state and its
// derivative, the affine parameter, the step size and its controller, and
// the paths saved so far. Run() once.
class Integrator {
 public:
  Integrator(MetricModel& metric, torch::Tensor y, const Redshift& redshift, const std::vector<double>& z_stop,
             RayTracerOptions o);
  Paths Run();

 private:
  // One tried step: the stages, the state at its end and the error norms.
  struct Trial {
    std::vector<torch::Tensor> k;
    Rhs last;
    torch::Tensor y_new;
    std::vector<double> err_ray;
    double err = 0;
    bool non_finite = false;
  };
  Trial TryStep() const;
  void Reject(const Trial& trial);
  void Accept(const Trial& trial);
  bool StopRaysAt(int64_t here);
  void StopStalled(const std::vector<double>& err_ray, double threshold);
  void RecordBad(int64_t r, const char* why);
  void Kill(int64_t r, const char* why, int64_t last_index);
  bool AnyAlive() const { return std::find(alive_.begin(), alive_.end(), 1) != alive_.end(); }
  void UpdateMask();
  double StartStep() const;
  int64_t Here() const { return static_cast<int64_t>(ys_.size()) - 1; }

  MetricModel& metric_;
  const Redshift& redshift_;
  const std::vector<double>& z_stop_;
  RayTracerOptions o_;
  const int64_t n_rays_;
  Paths p_;
  std::vector<char> alive_;
  torch::Tensor alive_mask_;  // [R] bool; undefined: all alive
  torch::Tensor y_;
  Rhs f_;
  std::vector<torch::Tensor> ys_, fs_, cs_;
  double min_step_, lam_ = 0.0, h_ = 0.0;
  int64_t accepted_ = 0, rejected_ = 0;
  AcceptedStep last_accepted_;
  bool just_rejected_ = false;
};

Integrator::Integrator(MetricModel& metric, torch::Tensor y, const Redshift& redshift,
                       const std::vector<double>& z_stop, RayTracerOptions o)
    : metric_(metric), redshift_(redshift), z_stop_(z_stop), o_(o), n_rays_(y.size(0)), y_(std::move(y)) {
  if (y_.scalar_type() != torch::kFloat64) {
    // Below these, float32 rounding dominates the error estimate and the
    // step size collapses.
    o_.rtol = std::max(o_.rtol, kFloat32Rtol);
    o_.atol = std::max(o_.atol, kFloat32Atol);
  }
  p_.stop.reasons.assign(n_rays_, "");
  p_.last.assign(n_rays_, 0);
  alive_.assign(n_rays_, 1);
  f_ = Derivative(metric_, y_, o_.fused);
  ys_ = {y_};
  fs_ = {f_.dy};
  cs_ = {torch::zeros_like(y_)};
  p_.g = {f_.g.detach()};
  p_.dg = {f_.dg.detach()};
  p_.lambda = {0.0};
  p_.z.push_back(std::vector<double>(n_rays_, 0.0));
  min_step_ = 1e-9 * std::max(1.0, std::abs(o_.lambda_end));
  h_ = StartStep();
}

// A first step, at the start and after stopping stalled rays: as asked, else
// the automatic one (ray_error.h) for the rays still moving.
double Integrator::StartStep() const {
  if (o_.first_step > 0) return -o_.first_step;
  return -std::max(min_step_, InitialStep(y_, f_.dy, o_.rtol, std::abs(o_.lambda_end - lam_)));
}

// Undefined while every ray is alive: the stages then skip the mask (and
// the count it would take to read it) altogether.
void Integrator::UpdateMask() {
  if (std::find(alive_.begin(), alive_.end(), 0) == alive_.end()) {
    alive_mask_ = torch::Tensor();
    return;
  }
  alive_mask_ = torch::tensor(std::vector<int64_t>(alive_.begin(), alive_.end())).to(torch::kBool);
}

void Integrator::Kill(int64_t r, const char* why, int64_t last_index) {
  alive_[r] = 0;
  p_.stop.reasons[r] = why;
  p_.last[r] = last_index;
}

// Where ray r stopped on a bad state (the current one): its position and the
// metric's eigenvalues there.
void Integrator::RecordBad(int64_t r, const char* why) {
  RayStop::Bad b;
  b.ray = r;
  b.reason = why;
  b.lambda = lam_;
  auto x = y_[r].narrow(0, 0, 4).detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto gr = f_.g[r].detach().to(torch::kCPU, torch::kFloat64);
  for (int i = 0; i < 4; ++i) b.x[i] = x.data_ptr<double>()[i];
  b.eigenvalues.fill(NAN);
  if (torch::isfinite(gr).all().item<bool>()) {
    auto e = torch::linalg_eigvalsh(gr).contiguous();
    for (int i = 0; i < 4; ++i) b.eigenvalues[i] = e.data_ptr<double>()[i];
  }
  p_.stop.bad.push_back(b);
}

// The six stages of a step of size h_ from y_, and per-ray error norms on
// detached values.
Integrator::Trial Integrator::TryStep() const {
  Trial t;
  t.k = {f_.dy};
  for (int s = 1; s < 7; ++s) {
    const Stage stage = StageSum(y_, h_, t.k, kA[s], o_.fused);
    t.last = Derivative(metric_, stage.y, o_.fused, alive_mask_, stage.x);
    t.k.push_back(t.last.dy);
    if (s == 6) t.y_new = stage.y;
  }
  t.err_ray = ErrorNorms(y_, t.y_new, t.k, kE, h_, o_.rtol, o_.atol, o_.fused);
  for (int64_t r = 0; r < n_rays_; ++r) {
    if (!alive_[r]) continue;
    if (!std::isfinite(t.err_ray[r])) t.non_finite = true;
    else t.err = std::max(t.err, t.err_ray[r]);
  }
  return t;
}

// The step size collapses only where a ray runs into a singularity: stop the
// rays that drive it (non-finite, or errors at or above the threshold) and
// go on.
void Integrator::StopStalled(const std::vector<double>& err_ray, double threshold) {
  const int64_t here = Here();
  for (int64_t r = 0; r < n_rays_; ++r) {
    if (!alive_[r]) continue;
    const char* why = !std::isfinite(err_ray[r]) ? "non-finite" : err_ray[r] >= threshold ? "singular" : nullptr;
    if (why == nullptr) continue;
    RecordBad(r, why);
    Kill(r, why, here);
  }
  UpdateMask();
  f_.dy = FreezeRays(f_.dy, alive_mask_);
  h_ = StartStep();
  last_accepted_ = {};
}

void Integrator::Reject(const Trial& trial) {
  ++rejected_;
  just_rejected_ = true;
  h_ *= trial.non_finite ? 0.2 : std::max(0.2, 0.9 * std::pow(trial.err, -0.2));
  if (std::abs(h_) < min_step_) StopStalled(trial.err_ray, 1.0);
}

// Stops the rays whose new state (index here) is bad (non-Lorentzian, not
// finite: they keep the state before) or past their end (redshift, time,
// affine parameter). Returns whether any ray stopped.
bool Integrator::StopRaysAt(int64_t here) {
  std::vector<double> z_now(n_rays_), t_now(n_rays_);
  std::vector<char> lorentzian(n_rays_);
  {
    torch::NoGradGuard no_grad;
    auto zt = (redshift_(f_.g, y_.narrow(1, 4, 4)) - 1.0).to(torch::kCPU, torch::kFloat64).contiguous();
    auto tt = y_.select(1, 0).to(torch::kCPU, torch::kFloat64).contiguous();
    lorentzian = Lorentzian(f_.g);
    for (int64_t r = 0; r < n_rays_; ++r) {
      z_now[r] = zt.data_ptr<double>()[r];
      t_now[r] = tt.data_ptr<double>()[r];
    }
  }
  std::vector<double> z_row = p_.z.back();
  bool changed = false;
  std::vector<int64_t> bad(n_rays_, 0);  // stopped here at a bad state
  for (int64_t r = 0; r < n_rays_; ++r) {
    if (!alive_[r]) continue;
    if (!lorentzian[r] && o_.stop_non_lorentzian) {
      RecordBad(r, "non-lorentzian");
      Kill(r, "non-lorentzian", here - 1);
    } else if (!std::isfinite(z_now[r]) || !std::isfinite(t_now[r])) {
      RecordBad(r, "non-finite");
      Kill(r, "non-finite", here - 1);
    } else {
      z_row[r] = z_now[r];
      if (z_now[r] > z_stop_[r]) Kill(r, "redshift", here);
      else if (t_now[r] < o_.t_min) Kill(r, "time", here);
      else if (lam_ <= o_.lambda_end) Kill(r, "affine", here);
    }
    changed |= !alive_[r];
    bad[r] = !alive_[r] && p_.last[r] < here;
  }
  p_.z.push_back(z_row);
  if (!changed) return false;
  UpdateMask();
  // A ray stopped at a bad state keeps its last good one from here on.
  if (std::find(bad.begin(), bad.end(), 1) != bad.end()) {
    auto mask = torch::tensor(bad).to(torch::kBool).view({n_rays_, 1}).to(y_.device());
    y_ = torch::where(mask, ys_[here - 1], y_);
    ys_.back() = y_;
    f_ = Derivative(metric_, y_, o_.fused, alive_mask_);  // finite again (the live rays)
  }
  // Frozen rays advance no further (fs keeps the true derivative at their
  // last state, for the read-out's interpolant).
  f_.dy = FreezeRays(f_.dy, alive_mask_);
  return true;
}

// Saves the step's end state, stops the rays it ends, and sizes the next step.
void Integrator::Accept(const Trial& trial) {
  ++accepted_;
  lam_ += h_;
  y_ = trial.y_new;
  f_ = trial.last;
  ys_.push_back(y_);
  fs_.push_back(f_.dy);
  p_.g.push_back(f_.g.detach());
  p_.dg.push_back(f_.dg.detach());
  cs_.push_back(StageSum(torch::zeros_like(y_), h_, trial.k, kDense, o_.fused).y);
  p_.lambda.push_back(lam_);
  StopRaysAt(Here());
  h_ /= NextStepQuotient(trial.err, h_, just_rejected_, &last_accepted_);
  just_rejected_ = false;
  if (std::abs(h_) < min_step_ && AnyAlive()) StopStalled(trial.err_ray, 0.5 * trial.err);
}

Paths Integrator::Run() {
  while (AnyAlive() && accepted_ + rejected_ < o_.max_steps) {
    if (lam_ + h_ < o_.lambda_end) h_ = o_.lambda_end - lam_;
    const Trial trial = TryStep();
    if (trial.non_finite || !(trial.err <= 1.0)) {
      Reject(trial);
    } else {
      Accept(trial);
    }
  }
  const int64_t here = Here();
  for (int64_t r = 0; r < n_rays_; ++r) {
    if (alive_[r]) Kill(r, "steps", here);
  }
  p_.stop.accepted = accepted_;
  p_.stop.rejected = rejected_;
  if (RayStateRecorder::Active()) RecordPositions(ys_, p_);
  p_.y = std::move(ys_);
  p_.f = std::move(fs_);
  p_.c = std::move(cs_);
  return std::move(p_);
}

Paths Integrate(MetricModel& metric, torch::Tensor y, const Redshift& redshift, const std::vector<double>& z_stop,
                const RayTracerOptions& o) {
  return Integrator(metric, std::move(y), redshift, z_stop, o).Run();
}

// What a mode reads off a state: 1 + z, d_L and D_A (Mpc).
struct Observables {
  torch::Tensor one_plus_z, luminosity, angular;
};

// sqrt(x) for x >= 0 whose gradient at 0 is 0 rather than 0 * inf = NaN:
// distances are read off at the observer itself (the first saved point).
torch::Tensor SqrtOrZero(const torch::Tensor& x) {
  auto positive = x > 0;
  return torch::where(positive, torch::sqrt(torch::where(positive, x, torch::ones_like(x))),
                      torch::zeros_like(x));
}

Observables Observe(const torch::Tensor& s, const torch::Tensor& g, const Redshift& redshift) {
  Observables out;
  out.one_plus_z = redshift(g, s.narrow(1, 4, 4));
  if (!redshift.physical) {
    auto r = SqrtOrZero(s.narrow(1, 1, 3).square().sum(1));
    out.luminosity = out.one_plus_z * r * 1000.0;
    out.angular = out.luminosity / out.one_plus_z.square();
    return out;
  }
  auto xi1 = s.narrow(1, 8, 4), xi2 = s.narrow(1, 16, 4);
  auto gx1 = torch::bmm(g, xi1.unsqueeze(2)).squeeze(2), gx2 = torch::bmm(g, xi2.unsqueeze(2)).squeeze(2);
  auto g11 = (xi1 * gx1).sum(1), g22 = (xi2 * gx2).sum(1), g12 = (xi1 * gx2).sum(1);
  auto det = (g11 * g22 - g12 * g12).clamp_min(0);
  out.angular = SqrtOrZero(SqrtOrZero(det)) * 1000.0;
  out.luminosity = out.one_plus_z.square() * out.angular;
  return out;
}

// D_H = -(1+z)^2 E_obs / (d(1+z)/dl), the distance c/H along the line of
// sight (for FLRW d(1+z)/dl = -H (1+z)^2 E_obs), in Mpc.
torch::Tensor HubbleDistance(MetricModel& metric, const torch::Tensor& s, const Redshift& redshift,
                             bool fused) {
  auto k = s.narrow(1, 4, 4);
  Rhs at = Derivative(metric, s.narrow(1, 0, 8), fused);  // the geodesic alone: dk/dl and the jet
  auto f = redshift(at.g, k);  // 1 + z
  auto df = redshift.Rate(at.g, at.dg, k, at.dy.narrow(1, 4, 4));
  auto e_obs = redshift.physical ? torch::ones({}, s.options()) : redshift.e_obs;
  return -f.square() * e_obs / df * 1000.0;
}

// z at states s [N, >= 8] (x^mu, k^mu first), with graph.
torch::Tensor RedshiftAt(MetricModel& metric, const torch::Tensor& s, const Redshift& redshift) {
  return redshift(metric.jet(s.narrow(1, 0, 4), 0).g, s.narrow(1, 4, 4)) - 1.0;
}

// z at each ray's state index[r] (with graph), the states gathered per
// saved index: [R].
torch::Tensor RedshiftAtStates(MetricModel& metric, const Paths& p, const std::vector<int64_t>& index,
                               const Redshift& redshift) {
  const int64_t n_rays = static_cast<int64_t>(index.size());
  std::map<int64_t, std::vector<int64_t>> by_state;
  for (int64_t r = 0; r < n_rays; ++r) by_state[index[r]].push_back(r);
  std::vector<torch::Tensor> parts;
  std::vector<int64_t> order;
  for (const auto& [i, rs] : by_state) {
    parts.push_back(p.y[i].index_select(0, torch::tensor(rs, torch::kLong).to(p.y[i].device())));
    order.insert(order.end(), rs.begin(), rs.end());
  }
  std::vector<int64_t> where(n_rays);
  for (int64_t j = 0; j < n_rays; ++j) where[order[j]] = j;
  auto s = torch::cat(parts, 0).index_select(0, torch::tensor(where, torch::kLong).to(p.y[0].device()));
  return RedshiftAt(metric, s, redshift);
}

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
                                   const std::vector<double>& target) {
  std::vector<double> out(target.size(), NAN);
  for (size_t j = 0; j < target.size(); ++j) {
    const double za = z0[j], zb = z1[j], da = d0[j], db = d1[j], zt = target[j];
    if (!std::isfinite(za) || !std::isfinite(zb) || !std::isfinite(da) || !std::isfinite(db) ||
        !(za < zt && zt <= zb)) {
      continue;
    }
    double a = 0, b = 1, t = (zt - za) / (zb - za);
    for (int it = 0; it < 60; ++it) {
      const double v = HermiteValue(t, za, da, zb, db) - zt;
      if (v < 0) a = t; else b = t;
      const double d = HermiteSlope(t, za, da, zb, db);
      double next = d != 0 ? t - v / d : 0.5 * (a + b);
      if (!(next > a && next < b)) next = 0.5 * (a + b);
      const bool done = std::abs(next - t) < 1e-15;
      t = next;
      if (done) break;
    }
    out[j] = t;
  }
  return out;
}

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
                                                  const torch::Tensor& tgt, const torch::TensorOptions& options) {
  torch::Tensor theta, z_theta;
  const double tol = options.dtype() == torch::kFloat64 ? 1e-14 : 1e-7;
  torch::NoGradGuard no_grad;
  auto a = torch::zeros_like(tgt), b = torch::ones_like(tgt);
  auto fa = model.z0 - tgt, fb = model.z1 - tgt;
  auto last_below = torch::zeros(tgt.sizes(), tgt.options().dtype(torch::kBool));
  auto last_above = last_below.clone();
  auto guess = torch::tensor(start, torch::kFloat64).to(options);
  auto next = torch::where((guess > 0) & (guess < 1), guess, (fa / (fa - fb)).clamp(0, 1).nan_to_num(0.5));
  // A target is close enough once |z - z*| <= ztol: the Newton step then
  // leaves an error of order ztol^2 (1e-20 / 1e-10 relative).
  const auto ztol = (options.dtype() == torch::kFloat64 ? 1e-10 : 1e-5) * (1 + tgt);
  for (int it = 0; it < 60; ++it) {
    theta = next.detach().requires_grad_(true);
    {
      torch::AutoGradMode enable(true);  // also when the caller only evaluates
      z_theta = z_of(theta);
    }
    auto fz = z_theta.detach() - tgt;
    auto th = theta.detach();
    auto below = fz < 0, above = fz >= 0;
    a = torch::where(below, th, a);
    fa = torch::where(below, fz, fa);
    b = torch::where(below, b, th);
    fb = torch::where(below, fb, fz);
    // Illinois: b kept twice (theta replaced a twice): halve fb; and vice versa.
    fb = torch::where(below & last_below, 0.5 * fb, fb);
    fa = torch::where(above & last_above, 0.5 * fa, fa);
    last_below = below;
    last_above = above;
    next = a - fa * (b - a) / (fb - fa);
    next = torch::where((next > a) & (next < b), next, 0.5 * (a + b));
    auto newton = th - fz / model.Slope(th);
    next = torch::where((newton > a) & (newton < b), newton, next);
    next = torch::where(fz.abs() <= ztol, th, next);
    if ((next - th).abs().max().item<double>() < tol) break;
  }
  return {theta, z_theta};
}

// The exact read-out: each target at its first crossing on the dense output
// (Crossings, then one differentiable Newton step).
// Which saved step each target's redshift is first crossed in (the running
// maximum of its ray's z up to the ray's last valid state), for the targets
// whose ray reached them; and the state of largest z on each ray.
struct Brackets {
  std::vector<int64_t> argmax;      // per ray: the saved index of its largest z
  std::vector<int64_t> reached_idx;  // the targets reached
  std::vector<int64_t> lo_flat, hi_flat, lo_step;  // per reached target: its step's ends
  std::vector<char> reached;         // per target
  // The read-out interpolates between the first n_saved states only, so that
  // later states (and the steps that led there) are not in its graph and the
  // backward pass skips them where only z_max (read off its own state) or
  // nothing uses them.
  int64_t n_saved = 1;
};

Brackets FindBrackets(const Paths& p, const int64_t* rp, const double* zp, int64_t n) {
  const int64_t n_rays = p.y.front().size(0);
  std::vector<std::vector<double>> run(n_rays);
  Brackets b;
  b.argmax.assign(n_rays, 0);
  for (int64_t r = 0; r < n_rays; ++r) {
    for (int64_t i = 0; i <= p.last[r]; ++i) {
      const double zi = p.z[i][r];
      run[r].push_back(i == 0 ? zi : std::max(run[r].back(), zi));
      if (zi >= p.z[b.argmax[r]][r]) b.argmax[r] = i;
    }
  }
  b.reached.assign(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rp[i];
    TORCH_CHECK(r >= 0 && r < n_rays, "ray index ", r, " out of range [0, ", n_rays, ")");
    const auto& zr = run[r];
    if (!(zp[i] > 0) || zr.size() < 2 || zp[i] > zr.back()) continue;
    b.reached[i] = 1;
    b.reached_idx.push_back(i);
    int64_t up = std::lower_bound(zr.begin(), zr.end(), zp[i]) - zr.begin();
    up = std::clamp<int64_t>(up, 1, static_cast<int64_t>(zr.size()) - 1);
    b.lo_step.push_back(up - 1);
    b.lo_flat.push_back((up - 1) * n_rays + r);
    b.hi_flat.push_back(up * n_rays + r);
    b.n_saved = std::max(b.n_saved, up + 1);
  }
  return b;
}

// The model of z along each bracketing step: z and dz/dtheta = h d(1+z)/dl
// at its ends, from the metric the integrator already evaluated there; and
// the model's crossings of the targets.
struct StepModels {
  StepModel model;
  std::vector<double> crossings;
};

StepModels ModelSteps(const Paths& p, const Redshift& redshift, const Brackets& b, const torch::Tensor& flat_y,
                      const torch::Tensor& flat_f, const std::vector<double>& steps, const int64_t* rp,
                      const double* zp, const torch::TensorOptions& options) {
  std::vector<double> rate;
  {
    torch::NoGradGuard no_grad;
    auto flat_g = torch::stack(at::TensorList(p.g).slice(0, b.n_saved), 0).flatten(0, 1);
    auto flat_dg = torch::stack(at::TensorList(p.dg).slice(0, b.n_saved), 0).flatten(0, 1);
    auto r = redshift.Rate(flat_g, flat_dg, flat_y.narrow(1, 4, 4).detach(), flat_f.narrow(1, 4, 4).detach());
    r = r.to(torch::kCPU, torch::kFloat64).contiguous();
    rate.assign(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
  }
  const int64_t m = static_cast<int64_t>(b.reached_idx.size());
  std::vector<double> za(m), zb(m), da(m), db(m), target(m);
  for (int64_t j = 0; j < m; ++j) {
    const int64_t r = rp[b.reached_idx[j]];
    za[j] = p.z[b.lo_step[j]][r];
    zb[j] = p.z[b.lo_step[j] + 1][r];
    da[j] = steps[j] * rate[b.lo_flat[j]];
    db[j] = steps[j] * rate[b.hi_flat[j]];
    target[j] = zp[b.reached_idx[j]];
  }
  auto as_tensor = [&](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64).to(options); };
  return {StepModel{as_tensor(za), as_tensor(da), as_tensor(zb), as_tensor(db)},
          ModelCrossings(za, da, zb, db, target)};
}

// d_L at the crossing states: at the root 1 + z = 1 + z* to first order, so
// the target itself is used. In reference mode d_L = (1+z) r (Observe's
// (1+z) cancels: no metric needed).
torch::Tensor LuminosityDistanceAt(MetricModel& metric, const torch::Tensor& state, const torch::Tensor& tgt,
                                   const Redshift& redshift) {
  if (redshift.physical) {
    return (1.0 + tgt).square() * Observe(state, metric.jet(state.narrow(1, 0, 4), 0).g, redshift).angular;
  }
  return (1.0 + tgt) * SqrtOrZero(state.narrow(1, 1, 3).square().sum(1)) * 1000.0;
}

// The exact read-out: each target at its first crossing on the dense output,
// found on the step model and refined on the dense output (Crossings), then
// one differentiable Newton step for the crossing's exact first-order
// gradient.
SkyDistances ReadOff(MetricModel& metric, const Paths& p, const Redshift& redshift,
                     const torch::Tensor& ray_of, const torch::Tensor& z_target,
                     const torch::TensorOptions& options, const RayTracerOptions& o) {
  SkyDistances out;
  out.stop = p.stop;
  const int64_t n_rays = p.y.front().size(0), dim = p.y.front().size(1);
  const int64_t n = z_target.size(0);
  auto zt = z_target.to(torch::kCPU, torch::kFloat64).contiguous();
  auto rays = ray_of.to(torch::kCPU, torch::kLong).contiguous();
  const double* zp = zt.data_ptr<double>();
  const int64_t* rp = rays.data_ptr<int64_t>();
  Brackets b = FindBrackets(p, rp, zp, n);
  auto stack = [&](const std::vector<torch::Tensor>& v) {
    return torch::stack(at::TensorList(v).slice(0, b.n_saved), 0).reshape({b.n_saved * n_rays, dim});
  };
  auto flat_y = stack(p.y), flat_f = stack(p.f), flat_c = stack(p.c);
  out.z_max = RedshiftAtStates(metric, p, b.argmax, redshift);
  out.reached = torch::from_blob(b.reached.data(), {n}, torch::kBool).clone();
  out.luminosity_distance = torch::zeros({n}, options);
  out.angular_distance = torch::zeros({n}, options);
  out.source = torch::zeros({n, 8}, options);
  if (o.hubble_distance) out.hubble_distance = torch::zeros({n}, options);
  if (b.reached_idx.empty()) return out;

  const int64_t m = static_cast<int64_t>(b.reached_idx.size());
  auto idx = torch::tensor(b.reached_idx, torch::kLong);
  auto lo = torch::tensor(b.lo_flat, torch::kLong), hi = torch::tensor(b.hi_flat, torch::kLong);
  std::vector<double> steps(m);
  for (int64_t j = 0; j < m; ++j) steps[j] = p.lambda[b.lo_step[j] + 1] - p.lambda[b.lo_step[j]];
  auto step = torch::tensor(steps, torch::kFloat64).to(options).view({-1, 1});
  auto tgt = zt.index_select(0, idx).to(options);
  auto y0 = flat_y.index_select(0, lo), f0 = flat_f.index_select(0, lo);
  auto y1 = flat_y.index_select(0, hi), f1 = flat_f.index_select(0, hi);
  auto c1 = flat_c.index_select(0, hi);
  auto state_at = [&](const torch::Tensor& theta) { return DenseOutput(theta, y0, f0, y1, f1, c1, step); };

  const StepModels models = ModelSteps(p, redshift, b, flat_y, flat_f, steps, rp, zp, options);
  auto [theta, z_theta] =
      Crossings([&](const torch::Tensor& th) { return RedshiftAt(metric, state_at(th), redshift); }, models.model,
                models.crossings, tgt, options);
  torch::Tensor slope;
  {
    torch::AutoGradMode enable(true);
    slope = torch::autograd::grad({z_theta.sum()}, {theta}, {}, /*retain_graph=*/true)[0].detach();
  }
  auto state = state_at(theta.detach() - (z_theta - tgt) / slope);
  auto d_l = LuminosityDistanceAt(metric, state, tgt, redshift);
  auto d_a = d_l / (1.0 + tgt).square();
  out.luminosity_distance = out.luminosity_distance.index_put({idx}, d_l);
  out.angular_distance = out.angular_distance.index_put({idx}, d_a);
  out.source = out.source.index_put({idx}, state.narrow(1, 0, 8));
  if (o.hubble_distance) {
    out.hubble_distance = out.hubble_distance.index_put({idx}, HubbleDistance(metric, state, redshift, o.fused));
  }
  return out;
}

// The reference implementation's read-out (geodesics.py@0bd4b52:192-262):
// the ray sampled at `saved_points` affine parameters evenly spaced over
// [0, lambda_end] and nowhere else; the samples the ray reached (up to its
// last valid state) from the dense output, z = F(g, k) - 1 and d = (1+z)
// sqrt(x^2+y^2+z^2 + 1e-9) in units of 1000 Mpc; then ReferenceDistances.
// Every target gets a distance; `reached` says which lie at or below the
// largest sampled z.
SkyDistances ReadOffReference(MetricModel& metric, const Paths& p, const Redshift& redshift,
                              const torch::Tensor& z_target, const torch::TensorOptions& options,
                              const RayTracerOptions& o) {
  TORCH_CHECK(!redshift.physical && p.y.front().size(0) == 1,
              "the reference read-out reads the reference ray (reference mode)");
  TORCH_CHECK(!o.hubble_distance, "the reference read-out gives no D_H");
  const int64_t ns = std::max<int64_t>(1, o.saved_points), last = p.last[0];
  const double lam_stop = p.lambda[last];
  std::vector<torch::Tensor> states;
  for (int64_t q = 0; q < ns; ++q) {
    const double lq = ns == 1 ? 0.0 : o.lambda_end * static_cast<double>(q) / static_cast<double>(ns - 1);
    if (lq < lam_stop) break;  // past the ray's end: the reference's solver gives inf there
    if (last == 0) {
      states.push_back(p.y[0]);
      continue;
    }
    int64_t i = 0;  // the step containing lq (lambda decreases)
    while (i + 1 < last && p.lambda[i + 1] > lq) ++i;
    const double h = p.lambda[i + 1] - p.lambda[i];
    auto theta = torch::full({1}, std::clamp((lq - p.lambda[i]) / h, 0.0, 1.0), options);
    states.push_back(DenseOutput(theta, p.y[i], p.f[i], p.y[i + 1], p.f[i + 1], p.c[i + 1],
                                 torch::full({1, 1}, h, options)));
  }
  auto s = torch::cat(states, 0);
  auto z = RedshiftAt(metric, s, redshift);
  auto d = (1.0 + z) * torch::sqrt(s.narrow(1, 1, 3).square().sum(1) + 1e-9);
  auto target = z_target.to(options);
  SkyDistances out;
  out.stop = p.stop;
  out.luminosity_distance = ReferenceDistances(z, d, ns, target) * 1000.0;
  out.angular_distance = out.luminosity_distance / (1.0 + target).square();
  out.z_max = z.max().view({1});
  out.reached = (target <= out.z_max.detach()).to(torch::kCPU);
  out.source = torch::zeros({target.size(0), 8}, options);
  return out;
}

// Per ray: stop once z > max(z_stop, its largest target + 0.2).
std::vector<double> StopRedshifts(int64_t n_rays, const torch::Tensor& ray_of, const torch::Tensor& z,
                                  double z_stop) {
  std::vector<double> stop(n_rays, z_stop);
  auto zt = z.to(torch::kCPU, torch::kFloat64).contiguous();
  auto rt = ray_of.to(torch::kCPU, torch::kLong).contiguous();
  for (int64_t i = 0; i < zt.numel(); ++i) {
    const int64_t r = rt.data_ptr<int64_t>()[i];
    if (r >= 0 && r < n_rays) stop[r] = std::max(stop[r], zt.data_ptr<double>()[i] + 0.2);
  }
  return stop;
}

}  // namespace

int64_t RayStop::Count(const std::string& reason) const {
  return std::count(reasons.begin(), reasons.end(), reason);
}

std::string RayStop::Summary() const {
  std::map<std::string, int64_t> counts;
  for (const auto& r : reasons) ++counts[r];
  std::string s;
  for (const auto& [k, v] : counts) absl::StrAppend(&s, s.empty() ? "" : ", ", k, ": ", v);
  return s;
}

SkyDistances TraceReference(MetricModel& metric, const torch::Tensor& z_target,
                            const torch::TensorOptions& options, const RayTracerOptions& o) {
  TORCH_CHECK(z_target.dim() == 1 && z_target.size(0) > 0, "TraceReference: z must be [N], N > 0");
  auto x0 = torch::tensor({1.0, 0.0, 0.0, 0.0}, options).view({1, 4});
  auto g_obs = metric.jet(x0, 0).g;
  auto g00 = g_obs.select(1, 0).select(1, 0);
  auto kx = torch::sqrt(g00.abs() / g_obs.select(1, 1).select(1, 1).abs());
  auto one = torch::ones({1}, options), zero = torch::zeros({1}, options);
  auto y = torch::cat({x0, torch::stack({one, kx, zero, zero}, 1)}, 1);  // [1,8]
  Redshift redshift;
  redshift.e_obs = torch::sqrt(g00.abs()).squeeze();  // k^0 = 1 at the observer
  auto ray_of = torch::zeros({z_target.size(0)}, torch::kLong);
  Paths paths = Integrate(metric, y, redshift, StopRedshifts(1, ray_of, z_target, o.z_stop), o);
  auto out = o.reference_read_out ? ReadOffReference(metric, paths, redshift, z_target, options, o)
                                  : ReadOff(metric, paths, redshift, ray_of, z_target, options, o);
  out.z_max = out.z_max.squeeze(0);
  return out;
}

SkyDistances TraceSky(MetricModel& metric, const torch::Tensor& directions,
                      const torch::Tensor& ray_of, const torch::Tensor& z_target,
                      const torch::TensorOptions& options, const RayTracerOptions& o) {
  TORCH_CHECK(directions.dim() == 2 && directions.size(1) == 3 && directions.size(0) > 0,
              "TraceSky: directions must be [R,3], R > 0");
  TORCH_CHECK(!o.reference_read_out, "TraceSky: the reference read-out reads the reference ray only");
  TORCH_CHECK(z_target.dim() == 1 && ray_of.dim() == 1 && z_target.size(0) == ray_of.size(0),
              "TraceSky: z and ray_of must both be [N]");
  const int64_t n_rays = directions.size(0);
  auto x0 = torch::tensor({1.0, 0.0, 0.0, 0.0}, options).view({1, 4});
  auto g = metric.jet(x0, 0).g.squeeze(0);  // [4,4]
  // The comoving observer and its orthonormal frame (Gram-Schmidt of d_x,
  // d_y, d_z projected orthogonal to u), all differentiable in the metric.
  auto eye = torch::eye(4, options);
  auto u = eye[0] / torch::sqrt(-g[0][0]);
  auto dot = [&](const torch::Tensor& a, const torch::Tensor& b) { return torch::dot(a, torch::mv(g, b)); };
  std::vector<torch::Tensor> e;
  for (int i = 1; i <= 3; ++i) {
    auto v = eye[i];
    v = v + dot(u, v) * u;
    for (const auto& ej : e) v = v - dot(ej, v) * ej;
    e.push_back(v / torch::sqrt(dot(v, v)));
  }
  auto triad = torch::stack(e, 0);  // [3,4]: e_i^mu
  auto n = directions.to(options);
  n = n / n.norm(2, 1, true);
  // Screen: two unit vectors orthogonal to n in the frame, then to coordinates.
  auto helper = torch::where((n.select(1, 2).abs() < 0.9).view({-1, 1}),
                             torch::tensor({0.0, 0.0, 1.0}, options).expand({n_rays, 3}),
                             torch::tensor({1.0, 0.0, 0.0}, options).expand({n_rays, 3}));
  auto s1 = torch::linalg_cross(helper, n);
  s1 = s1 / s1.norm(2, 1, true);
  auto s2 = torch::linalg_cross(n, s1);
  auto k0 = u.unsqueeze(0) - torch::mm(n, triad);  // [R,4]
  auto y = torch::cat({x0.expand({n_rays, 4}), k0, torch::zeros({n_rays, 4}, options),
                       torch::mm(s1, triad), torch::zeros({n_rays, 4}, options), torch::mm(s2, triad)},
                      1);  // [R,24]
  Redshift redshift;
  redshift.physical = true;
  Paths paths = Integrate(metric, y, redshift, StopRedshifts(n_rays, ray_of, z_target, o.z_stop), o);
  return ReadOff(metric, paths, redshift, ray_of, z_target, options, o);
}

torch::Tensor SkyDirections(const torch::Tensor& ra_deg, const torch::Tensor& dec_deg) {
  auto a = ra_deg.to(torch::kFloat64) * (M_PI / 180.0), d = dec_deg.to(torch::kFloat64) * (M_PI / 180.0);
  return torch::stack({torch::cos(d) * torch::cos(a), torch::cos(d) * torch::sin(a), torch::sin(d)}, 1);
}

torch::Tensor DirectionBins(int64_t n) {
  TORCH_CHECK(n > 0, "DirectionBins: need at least one bin");
  auto i = torch::arange(n, torch::kFloat64) + 0.5;
  auto z = 1.0 - 2.0 * i / static_cast<double>(n);
  auto phi = i * (M_PI * (3.0 - std::sqrt(5.0)));
  auto r = torch::sqrt((1.0 - z * z).clamp_min(0));
  return torch::stack({r * torch::cos(phi), r * torch::sin(phi), z}, 1);
}

torch::Tensor NearestBin(const torch::Tensor& directions, const torch::Tensor& bins) {
  return torch::mm(directions.to(torch::kFloat64), bins.to(torch::kFloat64).t()).argmax(1);
}

}  // namespace lumpy
