// augmented_lagrangian: per point  lambda * v + mu/2 * v^2  (mean over the
// domain), with the multiplier update  lambda <- lambda + mu * mean(v)  every
// `multiplier_every` steps and, when `adaptive`, the penalty schedule of
// docs/physics.md: an EMA of mean(v) (ema <- decay*ema + (1-decay)*mean(v), the
// first value as is); every `check_every` steps, if ema > tau * (ema at the
// previous check), mu <- min(gamma * mu, mu_max).
//
// Timing: by default lambda is updated first (with the mu of the step) and
// mu is checked after steps check_every-1, 2 check_every-1, ...;
// `reference_timing` reproduces the reference's scheduler
// (scheduler.py@8a1e8ae:7-52, trainer.py@8a1e8ae:291-309): mu is checked
// after steps check_every, 2 check_every, ... and raised first, then lambda
// grows by the new mu times the mean violation.
//
// Safeguards (off by default, so the reference is reproduced exactly), after
// the safeguarded augmented Lagrangian of Birgin & Martinez (Practical
// Augmented Lagrangian Methods for Constrained Optimization, SIAM 2014, and
// ALGENCAN): the multiplier is capped at lambda_max after every update (its
// lower end is 0 already: it starts at lambda0 >= 0 and v >= 0); mu is not raised while the violation's EMA is at or below
// feasibility_tol (the constraint holds: more penalty buys nothing but
// stiffness); and an update whose mean violation, lambda or mu is not finite
// (or lies beyond float32's range: 3e38) is skipped and counted, so one bad
// step cannot poison the state.
//
// The state (lambda, mu, the EMA and the schedule's flags, the count of
// skipped updates) is the handler's registered buffers: 0-dim float64
// tensors that the engine saves and restores. penalty() always reads the
// current lambda and mu (copied into the graph as numbers at each call), so
// a changed multiplier changes the very next gradient. `freeze_multiplier`
// reproduces the part-3 reference, whose multiplier never reached the
// compiled loss (it stayed at lambda0).

#include <algorithm>
#include <cmath>

#include "lumpy/lumpy.h"

namespace {

class AugmentedLagrangian : public lumpy::ConstraintHandler {
 public:
  explicit AugmentedLagrangian(const lumpy::Params& p)
      : multiplier_every_(p.GetInt("multiplier_every")),
        freeze_(p.GetBool("freeze_multiplier")),
        adaptive_(p.GetBool("adaptive")),
        tau_(p.GetDouble("tau")),
        gamma_(p.GetDouble("gamma")),
        mu_max_(p.GetDouble("mu_max")),
        check_every_(p.GetInt("check_every")),
        ema_decay_(p.GetDouble("ema_decay")),
        reference_timing_(p.GetBool("reference_timing")),
        lambda_max_(p.GetDouble("lambda_max")),
        feasibility_tol_(p.GetDouble("feasibility_tol")) {
    auto buffer = [&](const char* name, double value) {
      return register_buffer(name, torch::tensor(value, torch::kFloat64));
    };
    lambda_ = buffer("lambda", p.GetDouble("lambda0"));
    mu_ = buffer("mu", p.GetDouble("mu0"));
    ema_ = buffer("ema", 0.0);
    ema_at_check_ = buffer("ema_at_check", 0.0);
    seen_ = buffer("seen", 0.0);
    checked_ = buffer("checked", 0.0);
    skipped_ = buffer("skipped", 0.0);
  }

  lumpy::Penalty penalty(const torch::Tensor& v) override {
    auto per_point = lambda_.item<double>() * v + 0.5 * mu_.item<double>() * v.square();
    return {per_point, per_point.mean()};
  }

  void update(const torch::Tensor& v, int64_t step) override {
    const double mean = v.numel() ? v.mean().item<double>() : 0.0;
    State s = Read();
    if (InRange(mean)) {
      if (reference_timing_) Schedule(mean, step, &s);
      if (!freeze_ && (step + 1) % multiplier_every_ == 0) s.lambda = std::min(s.lambda + s.mu * mean, lambda_max_);
      if (!reference_timing_) Schedule(mean, step, &s);
      if (InRange(s.lambda) && InRange(s.mu) && InRange(0.5 * s.mu * mean * mean + s.lambda * mean)) {
        Write(s);
        return;
      }
    }
    skipped_.fill_(skipped_.item<double>() + 1);  // the state stays as it was
  }

  std::vector<std::pair<std::string, double>> telemetry() const override {
    return {{"lambda", lambda_.item<double>()},
            {"mu", mu_.item<double>()},
            {"ema", ema_.item<double>()},
            {"skipped", skipped_.item<double>()}};
  }

 private:
  // The buffers as numbers, for an update.
  struct State {
    double lambda, mu, ema, ema_at_check;
    bool seen, checked;
  };
  State Read() const {
    return {lambda_.item<double>(), mu_.item<double>(), ema_.item<double>(), ema_at_check_.item<double>(),
            seen_.item<double>() != 0, checked_.item<double>() != 0};
  }
  void Write(const State& s) {
    lambda_.fill_(s.lambda);
    mu_.fill_(s.mu);
    ema_.fill_(s.ema);
    ema_at_check_.fill_(s.ema_at_check);
    seen_.fill_(s.seen ? 1.0 : 0.0);
    checked_.fill_(s.checked ? 1.0 : 0.0);
  }

  // Finite and within float32's range.
  static bool InRange(double x) { return std::isfinite(x) && std::abs(x) < 3e38; }

  // The adaptive penalty: the EMA of the mean violation, and every
  // check_every steps a raise of mu if the EMA fell less than tau.
  void Schedule(double mean, int64_t step, State* s) const {
    if (!adaptive_) return;
    s->ema = s->seen ? ema_decay_ * s->ema + (1 - ema_decay_) * mean : mean;
    s->seen = true;
    const bool check = reference_timing_ ? step > 0 && step % check_every_ == 0 : (step + 1) % check_every_ == 0;
    if (!check) return;
    if (s->checked && s->ema > tau_ * s->ema_at_check && s->ema > feasibility_tol_ && s->mu < mu_max_) {
      s->mu = std::min(gamma_ * s->mu, mu_max_);
    }
    s->ema_at_check = s->ema;
    s->checked = true;
  }

  int64_t multiplier_every_;
  bool freeze_, adaptive_;
  double tau_, gamma_, mu_max_;
  int64_t check_every_;
  double ema_decay_;
  bool reference_timing_;
  double lambda_max_, feasibility_tol_;
  torch::Tensor lambda_, mu_, ema_, ema_at_check_, seen_, checked_, skipped_;
};

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddConstraint(
      "augmented_lagrangian",
      "per point lambda*v + mu/2*v^2; lambda += mu*mean(v); optional adaptive mu schedule",
      {ParamSpec::Double("mu0", "initial penalty weight mu").Default(1.0).Greater(0),
       ParamSpec::Double("lambda0", "initial multiplier lambda").Default(0.0).AtLeast(0),
       ParamSpec::Int("multiplier_every", "update lambda every N steps").Default(int64_t{1}).AtLeast(1),
       ParamSpec::Bool("freeze_multiplier",
                       "keep lambda at lambda0 (reproduces the part-3 reference bug)")
           .Default(false),
       ParamSpec::Bool("adaptive", "raise mu when the violation's EMA stalls").Default(false),
       ParamSpec::Double("tau", "stall threshold: raise mu if ema > tau * previous ema")
           .Default(0.9)
           .Greater(0)
           .AtMost(1),
       ParamSpec::Double("gamma", "growth factor of mu").Default(10.0).Greater(1),
       ParamSpec::Double("mu_max", "largest mu").Default(1e5).Greater(0),
       ParamSpec::Int("check_every", "steps between stall checks").Default(int64_t{500}).AtLeast(1),
       ParamSpec::Double("ema_decay", "EMA factor of the mean violation").Default(0.9).AtLeast(0).Less(1),
       ParamSpec::Bool("reference_timing",
                       "the reference scheduler's timing: check mu after steps check_every, "
                       "2 check_every, ... (not one step earlier) and raise it before lambda's update")
           .Default(false),
       ParamSpec::Double("lambda_max",
                         "safeguard: lambda is capped at lambda_max after every update (Birgin & "
                         "Martinez); the default bounds nothing")
           .Default(1e300)
           .AtLeast(0),
       ParamSpec::Double("feasibility_tol",
                         "safeguard: mu is not raised while the violation's EMA is at or below this "
                         "(the constraint holds); 0 = the reference's rule")
           .Default(0.0)
           .AtLeast(0)},
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::ConstraintHandler>> {
        if (p.GetDouble("lambda_max") < p.GetDouble("lambda0")) {
          return lumpy::ParamError(
              "lambda_max", absl::StrCat("must be >= lambda0 (", p.GetDouble("lambda0"), "), got ",
                           p.GetDouble("lambda_max")));
        }
        if (p.GetDouble("mu_max") < p.GetDouble("mu0")) {
          return lumpy::ParamError(
              "mu_max", absl::StrCat("must be >= mu0 (", p.GetDouble("mu0"), "), got ",
                           p.GetDouble("mu_max")));
        }
        return std::make_shared<AugmentedLagrangian>(p);
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
