#include "physics/ray_integrator.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "physics/dopri5.h"
#include "physics/geodesic_rhs.h"
#include "physics/ray_error.h"
#include "physics/ray_states.h"

namespace lumpy::ray {
namespace {

constexpr double kFloat32Rtol = 1e-6, kFloat32Atol = 1e-8;

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

}  // namespace

Paths Integrate(MetricModel& metric, torch::Tensor y, const Redshift& redshift, const std::vector<double>& z_stop,
                const RayTracerOptions& o) {
  return Integrator(metric, std::move(y), redshift, z_stop, o).Run();
}

}  // namespace lumpy::ray
