// Constraint handlers, curricula, CMB priors, the learning-rate schedule and
// the held-out grid, each against a closed form.

#include <gtest/gtest.h>

#include <cmath>

#include "built_in_plugins.h"
#include "config/experiment.h"
#include "lumpy/jet.h"
#include "lumpy/module_state.h"
#include "lumpy/testing/conformance.h"
#include "train/certify.h"
#include "physics/point_set_context.h"
#include "train/schedule.h"
#include "train/step_loss.h"
#include "analytic_metrics.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;

// Minimises (x - 2)^2 subject to x <= 1 (violation v = max(0, x - 1)) by
// gradient descent on x, with the handler's penalty; the handler is updated
// after every step as the trainer does. Returns the final x.
double SolveToy(ConstraintHandler& handler, int64_t steps, double lr) {
  auto x = torch::tensor(0.0, torch::kFloat64).requires_grad_(true);
  for (int64_t step = 0; step < steps; ++step) {
    auto v = torch::relu(x - 1.0).reshape({1});
    auto loss = (x - 2.0).square() + handler.penalty(v).total;
    auto g = torch::autograd::grad({loss}, {x})[0];
    {
      torch::NoGradGuard no_grad;
      x -= lr * g;
    }
    handler.update(torch::relu(x.detach() - 1.0).reshape({1}), step);
  }
  return x.item<double>();
}

// The fixed soft quadratic stops at its biased optimum: d/dx[(x-2)^2 +
// w(x-1)^2] = 0 gives x = (2 + w)/(1 + w).
TEST(ConstraintHandlers, SoftQuadraticStopsAtItsBiasedOptimum) {
  for (double w : {1.0, 10.0}) {
    auto h = MakeBuiltIn<ConstraintHandler>("soft_quadratic", {{"weight", w}});
    EXPECT_NEAR(SolveToy(*h, 4000, 0.02), (2 + w) / (1 + w), 1e-9) << "w = " << w;
  }
}

// The linear penalty is exact once w exceeds the multiplier (2 here):
// below it the optimum is x = 2 - w/2.
TEST(ConstraintHandlers, LinearPenaltyIsExactAboveTheMultiplier) {
  auto weak = MakeBuiltIn<ConstraintHandler>("linear", {{"weight", 1.0}});
  EXPECT_NEAR(SolveToy(*weak, 4000, 0.01), 1.5, 1e-9);
  auto strong = MakeBuiltIn<ConstraintHandler>("linear", {{"weight", 3.0}});
  // Gradient descent on a kink chatters within one step (lr * w) of x = 1.
  EXPECT_NEAR(SolveToy(*strong, 10000, 1e-4), 1.0, 5e-4);
}

// The augmented Lagrangian reaches the constraint, and its multiplier the
// KKT value lambda* = 2; the fixed quadratic with the same mu does not.
TEST(ConstraintHandlers, AugmentedLagrangianReachesTheConstraint) {
  auto al = MakeBuiltIn<ConstraintHandler>(
      "augmented_lagrangian", {{"mu0", 10.0}, {"multiplier_every", int64_t{200}}});
  const double x = SolveToy(*al, 200 * 20, 0.02);
  EXPECT_NEAR(x, 1.0, 1e-6);
  const auto telemetry = al->telemetry();
  std::map<std::string, double> t(telemetry.begin(), telemetry.end());
  EXPECT_NEAR(t["lambda"], 2.0, 1e-5);
  EXPECT_EQ(t["mu"], 10.0);
  // Same penalty weight, no multiplier: (2 + mu/2)/(1 + mu/2) = 7/6.
  auto soft = MakeBuiltIn<ConstraintHandler>("soft_quadratic", {{"weight", 5.0}});
  EXPECT_NEAR(SolveToy(*soft, 4000, 0.02), 7.0 / 6.0, 1e-9);
}

// The adaptive schedule's timing. Default: lambda first (with the step's mu),
// checks after steps 3, 7, ... (check_every 4). reference_timing (the
// reference's scheduler): checks after steps 4, 8, ..., mu raised first and
// lambda grown with the new mu. A constant violation 1 never falls, so every
// check after the first raises mu by gamma = 10.
TEST(ConstraintHandlers, AdaptiveScheduleTiming) {
  auto run = [](bool reference, int64_t steps) {
    auto h = MakeBuiltIn<ConstraintHandler>(
        "augmented_lagrangian", {{"adaptive", true}, {"check_every", int64_t{4}}, {"mu_max", 1e9},
                                 {"reference_timing", reference}});
    for (int64_t step = 0; step < steps; ++step) h->update(torch::ones({2}, torch::kFloat64), step);
    const auto t = h->telemetry();
    return std::map<std::string, double>(t.begin(), t.end());
  };
  // Default: the first check after step 3 (no raise), the second after step 7.
  EXPECT_EQ(run(false, 8)["mu"], 10.0);
  EXPECT_EQ(run(false, 7)["mu"], 1.0);
  EXPECT_EQ(run(false, 8)["lambda"], 8.0);  // seven steps with mu 1, then mu 1 on step 7 before the raise
  // Reference: the first check at step 4 (no raise), the second at step 8.
  EXPECT_EQ(run(true, 8)["mu"], 1.0);
  EXPECT_EQ(run(true, 9)["mu"], 10.0);
  EXPECT_EQ(run(true, 9)["lambda"], 8.0 + 10.0);  // steps 0-7 with mu 1, step 8 with the raised mu
}

// The safeguarded augmented Lagrangian (Birgin & Martinez): on the toy
// problem min (x-2)^2 s.t. x <= 1 by gradient descent (lr 0.02), with the
// adaptive schedule checking every 20 steps. Once x sits on the constraint
// the violation's EMA stalls at a tiny value, so the reference's rule keeps
// raising mu (x10 per check) until mu lr > 2 and the descent on the penalty
// oscillates: the loss spikes. With feasibility_tol mu stops growing once
// the constraint holds, and lambda_max bounds the multiplier: the same
// solution (x = 1, lambda = 2), no spikes.
TEST(ConstraintHandlers, SafeguardedAugmentedLagrangianAvoidsTheSpikes) {
  auto run = [](ConstraintHandler& h, double* max_late_loss) {
    auto x = torch::tensor(0.0, torch::kFloat64).requires_grad_(true);
    *max_late_loss = 0;
    const int64_t steps = 3000;
    for (int64_t step = 0; step < steps; ++step) {
      // The violation as a sampled estimate sees it: the true one plus noise.
      const double noise = 0.005 * std::sin(1.7 * static_cast<double>(step));
      auto v = torch::relu(x - 1.0 + noise).reshape({1});
      auto loss = (x - 2.0).square() + h.penalty(v).total;
      if (step > steps / 2) *max_late_loss = std::max(*max_late_loss, loss.item<double>());
      auto g = torch::autograd::grad({loss}, {x})[0];
      {
        torch::NoGradGuard no_grad;
        x -= 1e-3 * torch::sign(g);  // a bounded step, as Adam's
      }
      h.update(v.detach(), step);
    }
    return x.item<double>();
  };
  std::map<std::string, ParamValue> common = {{"adaptive", true}, {"check_every", int64_t{20}},
                                             {"mu0", 1.0}, {"mu_max", 1e6}};
  auto plain = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", common);
  auto safe_params = common;
  safe_params["feasibility_tol"] = 1e-2;
  safe_params["lambda_max"] = 10.0;
  auto safe = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", safe_params);
  double plain_spike = 0, safe_spike = 0;
  const double x_plain = run(*plain, &plain_spike), x_safe = run(*safe, &safe_spike);
  auto state = [](ConstraintHandler& h) {
    const auto t = h.telemetry();
    return std::map<std::string, double>(t.begin(), t.end());
  };
  // The same solution...
  EXPECT_NEAR(x_plain, 1.0, 0.01);
  EXPECT_NEAR(x_safe, 1.0, 0.01);
  // ... but the reference's rule drove mu to its ceiling and lambda without
  // bound (spikes of 1e4), the safeguarded one did not.
  EXPECT_EQ(state(*plain)["mu"], 1e6);
  EXPECT_GT(state(*plain)["lambda"], 1e5);
  EXPECT_GT(plain_spike, 1e3);
  EXPECT_LT(state(*safe)["mu"], 1e6);
  EXPECT_LE(state(*safe)["lambda"], 10.0);
  EXPECT_LT(safe_spike, 2.0);
  // The new state round-trips through a checkpoint.
  auto copy = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", safe_params);
  ASSERT_TRUE(lumpy::testing::internal::ThroughCheckpoint(*safe, *copy).ok());
  EXPECT_EQ(state(*copy), state(*safe));
  // A non-finite violation is skipped and counted, the state kept.
  auto before = state(*safe);
  safe->update(torch::tensor({NAN}, torch::kFloat64), 5000);
  auto after = state(*safe);
  EXPECT_EQ(after["skipped"], before["skipped"] + 1);
  EXPECT_EQ(after["lambda"], before["lambda"]);
  EXPECT_EQ(after["mu"], before["mu"]);
  // A skipped first update leaves the schedule as new: the next mean violation
  // is the EMA's first value, as is.
  auto fresh = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", safe_params);
  fresh->update(torch::tensor({NAN}, torch::kFloat64), 0);
  fresh->update(torch::tensor({0.25}, torch::kFloat64), 1);
  EXPECT_EQ(state(*fresh)["ema"], 0.25);
}

// The penalty always reads the current multiplier: after an update the very
// next gradient is lambda + mu v with the new lambda (the reference once
// froze lambda at 0 for a whole blog post). The documented switch
// freeze_multiplier reproduces that bug on purpose.
TEST(ConstraintHandlers, AChangedMultiplierChangesTheNextGradient) {
  auto grad_at = [](ConstraintHandler& h, double v0) {
    auto v = torch::full({4}, v0, torch::kFloat64).requires_grad_(true);
    auto g = torch::autograd::grad({h.penalty(v).total}, {v})[0];
    return g[0].item<double>() * 4;  // d(mean)/dv_i = (lambda + mu v)/4
  };
  auto al = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", {{"mu0", 3.0}});
  EXPECT_DOUBLE_EQ(grad_at(*al, 0.5), 0.0 + 3.0 * 0.5);
  al->update(torch::full({4}, 0.5, torch::kFloat64), 0);  // lambda = 0 + 3 * 0.5
  EXPECT_DOUBLE_EQ(grad_at(*al, 0.5), 1.5 + 3.0 * 0.5);
  al->update(torch::full({4}, 0.25, torch::kFloat64), 1);  // lambda = 1.5 + 0.75
  EXPECT_DOUBLE_EQ(grad_at(*al, 0.5), 2.25 + 3.0 * 0.5);

  auto frozen = MakeBuiltIn<ConstraintHandler>(
      "augmented_lagrangian", {{"mu0", 3.0}, {"freeze_multiplier", true}});
  frozen->update(torch::full({4}, 0.5, torch::kFloat64), 0);
  EXPECT_DOUBLE_EQ(grad_at(*frozen, 0.5), 3.0 * 0.5);
}

// docs/physics.md's adaptive schedule: every check_every steps, mu <- min(gamma
// mu, mu_max) if the EMA of the mean violation has not fallen below tau
// times its value at the previous check.
TEST(ConstraintHandlers, AdaptivePenaltyRaisesMuOnlyWhenProgressStalls) {
  auto al = MakeBuiltIn<ConstraintHandler>(
      "augmented_lagrangian", {{"mu0", 1.0}, {"adaptive", true}, {"tau", 0.9}, {"gamma", 10.0},
                               {"mu_max", 1e3}, {"check_every", int64_t{5}}, {"freeze_multiplier", true}});
  auto mu = [&] {
    for (const auto& [k, v] : al->telemetry()) if (k == "mu") return v;
    return -1.0;
  };
  auto feed = [&](double v, int64_t step) { al->update(torch::full({3}, v, torch::kFloat64), step); };
  int64_t step = 0;
  for (; step < 5; ++step) feed(1.0, step);  // first check: only records the EMA
  EXPECT_EQ(mu(), 1.0);
  for (; step < 10; ++step) feed(1.0, step);  // stalled: ema 1 > 0.9 * 1
  EXPECT_EQ(mu(), 10.0);
  for (; step < 15; ++step) feed(0.01, step);  // falling fast: ema 0.59 * 1 + ... < 0.9
  EXPECT_EQ(mu(), 10.0);
  for (; step < 40; ++step) feed(5.0, step);  // rising: raised at 20, capped at 1e3
  EXPECT_EQ(mu(), 1e3);
  // The EMA itself: 0.9 ema + 0.1 v.
  auto fresh = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", {{"adaptive", true}});
  fresh->update(torch::full({2}, 2.0, torch::kFloat64), 0);
  fresh->update(torch::full({2}, 1.0, torch::kFloat64), 1);
  for (const auto& [k, v] : fresh->telemetry()) {
    if (k == "ema") EXPECT_DOUBLE_EQ(v, 0.9 * 2.0 + 0.1 * 1.0);
  }
}

TEST(ConstraintHandlers, AugmentedLagrangianStateRoundTrips) {
  auto a = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", {{"adaptive", true}, {"check_every", int64_t{2}}});
  for (int64_t s = 0; s < 7; ++s) a->update(torch::full({2}, 0.3 + s, torch::kFloat64), s);
  auto b = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", {{"adaptive", true}, {"check_every", int64_t{2}}});
  ASSERT_TRUE(lumpy::testing::internal::ThroughCheckpoint(*a, *b).ok());
  EXPECT_EQ(a->telemetry(), b->telemetry());
  a->update(torch::full({2}, 9.0, torch::kFloat64), 7);
  b->update(torch::full({2}, 9.0, torch::kFloat64), 7);
  EXPECT_EQ(a->telemetry(), b->telemetry());
  // The engine's one check of names and shapes: an archive of another
  // handler (homoscedastic's log_sigma) is refused, naming what is missing
  // and what is extra.
  auto other = MakeBuiltIn<ConstraintHandler>("homoscedastic");
  auto st = lumpy::testing::internal::ThroughCheckpoint(*other, *b);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no state \"lambda\""), std::string::npos) << st;
}

// A checkpoint written before handlers were modules (the state map written
// key by key with OutputArchive::write, as the engine did up to SDK ABI 4)
// still resumes: the same names, read into the buffers. One a plugin does
// not keep is refused by name; so is another shape.
TEST(ConstraintHandlers, ModuleStateReadsTheEarlierFormatAndChecksNamesAndShapes) {
  auto through = [](torch::serialize::OutputArchive& out, torch::nn::Module& into) {
    auto in = lumpy::testing::internal::Reopened(out);
    return LoadModuleState(in, into, "the handler of loss.wec");
  };
  auto d = [](double x) { return torch::tensor(x, torch::kFloat64); };
  auto old_format = [&](bool extra, bool reshaped) {
    torch::serialize::OutputArchive out;
    for (const char* k : {"lambda", "mu", "ema", "ema_at_check", "seen", "checked", "skipped"}) out.write(k, d(0.5));
    out.write("lambda", reshaped ? torch::zeros({3}, torch::kFloat64) : d(7.0));
    if (extra) out.write("sigma", d(1.0));
    return out;
  };
  auto h = MakeBuiltIn<ConstraintHandler>("augmented_lagrangian");
  auto a = old_format(false, false);
  ASSERT_TRUE(through(a, *h).ok());
  std::map<std::string, double> t;
  for (const auto& [k, v] : h->telemetry()) t[k] = v;
  EXPECT_EQ(t["lambda"], 7.0);
  EXPECT_EQ(t["mu"], 0.5);
  auto b = old_format(true, false);
  auto extra = through(b, *h);
  EXPECT_NE(extra.message().find("the handler of loss.wec: the checkpoint holds state \"sigma\""), std::string::npos)
      << extra;
  auto c = old_format(false, true);
  auto shape = through(c, *h);
  EXPECT_NE(shape.message().find("state \"lambda\" is [3] in the checkpoint, [] in the plugin"), std::string::npos)
      << shape;
}

// Homoscedastic: 1/2 e^(-2s) mean(v^2) + s; d/ds = -e^(-2s) mean(v^2) + 1, so
// s alone settles at e^(2s) = mean(v^2): sigma grows with the violation
// instead of the violation shrinking.
TEST(ConstraintHandlers, HomoscedasticValueGradientAndLazyOptimum) {
  auto h = MakeBuiltIn<ConstraintHandler>("homoscedastic", {{"log_sigma0", 0.3}});
  ASSERT_EQ(h->parameters().size(), 1u);
  auto s = h->parameters()[0];
  auto v = torch::tensor({0.5, 1.5, 2.0}, torch::kFloat64);
  const double l = (0.25 + 2.25 + 4.0) / 3;
  auto p = h->penalty(v).total;
  EXPECT_NEAR(p.item<double>(), 0.5 * std::exp(-0.6) * l + 0.3, 1e-14);
  auto g = torch::autograd::grad({p}, {s})[0];
  EXPECT_NEAR(g.item<double>(), -std::exp(-0.6) * l + 1.0, 1e-14);
  torch::optim::SGD opt({s}, torch::optim::SGDOptions(0.1));
  for (int i = 0; i < 2000; ++i) {
    opt.zero_grad();
    h->penalty(v).total.backward();
    opt.step();
  }
  EXPECT_NEAR(s.item<double>(), 0.5 * std::log(l), 1e-10);
  auto copy = MakeBuiltIn<ConstraintHandler>("homoscedastic");
  ASSERT_TRUE(lumpy::testing::internal::ThroughCheckpoint(*h, *copy).ok());
  EXPECT_EQ(copy->parameters()[0].item<double>(), s.item<double>());
}

// output_init = "zero": W = 0 at initialisation (plain mean of l/2); with
// W = c everywhere the reduction is mean(1/2 e^(-2c) l + c), and its
// gradient reaches W's weights. The default starts as the reference's
// Equinox MLP: every layer U(+-1/sqrt(fan_in)), so W differs from point to
// point.
TEST(Curricula, SpatialWeightNetStartsAsTheReference) {
  auto w = MakeBuiltIn<CurriculumWeighter>("spatial_weight_net");
  auto params = w->named_parameters();
  const double bound = 1.0 / std::sqrt(16.0);
  EXPECT_LE(params["l2.weight"].abs().max().item<double>(), bound);
  EXPECT_GT(params["l2.weight"].abs().max().item<double>(), 0.3 * bound);
  EXPECT_LE(params["l2.bias"].abs().max().item<double>(), bound);
}

TEST(Curricula, SpatialWeightNetReducesAsPartThree) {
  auto w = MakeBuiltIn<CurriculumWeighter>("spatial_weight_net", {{"output_init", std::string("zero")}});
  w->to(torch::kFloat64);
  auto x = torch::rand({7, 4}, torch::kFloat64) * 2 - 1;
  auto l = torch::rand({7}, torch::kFloat64);
  EXPECT_NEAR(w->reduce(x, l).item<double>(), 0.5 * l.mean().item<double>(), 1e-15);
  auto params = w->named_parameters();
  {
    torch::NoGradGuard no_grad;
    params["l2.bias"].fill_(0.4);
  }
  auto r = w->reduce(x, l);
  EXPECT_NEAR(r.item<double>(), 0.5 * std::exp(-0.8) * l.mean().item<double>() + 0.4, 1e-15);
  r.backward();
  EXPECT_GT(params["l2.weight"].grad().abs().sum().item<double>(), 0);
  const auto telemetry = w->telemetry();
  std::map<std::string, double> t(telemetry.begin(), telemetry.end());
  EXPECT_NEAR(t["mean_w"], 0.4, 1e-15);
  EXPECT_NEAR(t["mean_weight"], std::exp(-0.8), 1e-15);
}

// Where the loss vanishes (l = 1e-12, a constraint that holds exactly) the
// reduction's minimum W = 1/2 log l = -13.8 pulls W down without end: the
// part-5 wreck (factor e^(-2W) ~ 1e15 by step 27,000). With w_min = -2 the
// trained W stays above the bound, the factor below e^4, and when the loss
// returns (l = 1) W rises again towards its minimum at 0.
TEST(Curricula, SpatialWeightNetLowerBoundCapsTheFactor) {
  auto x = torch::rand({64, 4}, torch::kFloat64) * 2 - 1;
  auto train = [&](CurriculumWeighter& w, double l, int steps) {
    torch::optim::Adam adam(w.parameters(), torch::optim::AdamOptions(0.05));
    for (int i = 0; i < steps; ++i) {
      adam.zero_grad();
      w.reduce(x, torch::full({64}, l, torch::kFloat64)).backward();
      adam.step();
    }
    const auto telemetry = w.telemetry();
    return std::map<std::string, double>(telemetry.begin(), telemetry.end());
  };
  torch::manual_seed(3);
  auto free = MakeBuiltIn<CurriculumWeighter>("spatial_weight_net");
  free->to(torch::kFloat64);
  EXPECT_LT(train(*free, 1e-12, 600)["mean_w"], -4.0);
  torch::manual_seed(3);
  auto bounded = MakeBuiltIn<CurriculumWeighter>("spatial_weight_net", {{"w_min", -2.0}});
  bounded->to(torch::kFloat64);
  auto t = train(*bounded, 1e-12, 600);
  EXPECT_GT(t["mean_w"], -2.0);
  EXPECT_LT(t["mean_w"], -1.5);
  EXPECT_LE(t["mean_weight"], std::exp(4.0));
  EXPECT_GT(train(*bounded, 1.0, 600)["mean_w"], -0.5);
}

// Kasner a_i = t^p_i: H_i = p_i / t and sigma^2 = 1/2 sum (H_i - theta/3)^2;
// the metric depends on t only, so its spatial gradient vanishes.
TEST(CmbPriors, KasnerClosedForms) {
  auto kasner = MakeBuiltIn<MetricModel>("kasner");  // p = (-1/3, 2/3, 2/3)
  auto pts = torch::tensor({{1.0, 0.1, -0.2, 0.3}, {0.5, 0.0, 0.4, 0.0}}, torch::kFloat64);
  PointSetContext ctx(*kasner, pts);
  const double t[2] = {1.0, 0.5};
  auto expansion = MakeBuiltIn<LossTerm>("cmb_expansion")->evaluate(ctx).per_point;
  auto isotropy = MakeBuiltIn<LossTerm>("cmb_isotropy", {{"tolerance", 0.01}})->evaluate(ctx).per_point;
  auto homogeneity = MakeBuiltIn<LossTerm>("cmb_homogeneity")->evaluate(ctx).per_point;
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(expansion[i].item<double>(), std::pow(1.0 / 3.0 / t[i], 2), 1e-12);
    const double sigma2 = 1.0 / (3.0 * t[i] * t[i]);
    EXPECT_NEAR(isotropy[i].item<double>(), std::pow(sigma2 - 0.01, 2), 1e-12);
    EXPECT_NEAR(homogeneity[i].item<double>(), 0.0, 1e-20);
  }
  // An expanding, shear-free FLRW universe violates neither.
  auto eds = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("eds")}});
  PointSetContext flrw(*eds, pts);
  EXPECT_EQ(MakeBuiltIn<LossTerm>("cmb_expansion")->evaluate(flrw).value.item<double>(), 0.0);
  EXPECT_EQ(MakeBuiltIn<LossTerm>("cmb_isotropy")->evaluate(flrw).value.item<double>(), 0.0);
}

// Homogeneity in a lumpy metric, against the metric's gradient taken by
// autograd instead of the SIREN's Taylor-mode jet.
TEST(CmbPriors, HomogeneityMatchesAnAutogradGradient) {
  auto siren = MakeBuiltIn<MetricModel>("siren", {{"hidden", int64_t{16}}, {"layers", int64_t{2}},
                                                   {"output_init_std", 0.3}});
  siren->to(torch::kFloat64);
  auto pts = torch::rand({5, 4}, torch::kFloat64) * 2 - 1;
  PointSetContext ctx(*siren, pts);
  auto v = MakeBuiltIn<LossTerm>("cmb_homogeneity", {{"tolerance", 0.0}})->evaluate(ctx).per_point;
  auto jet = AutogradJet([&](const torch::Tensor& p) { return siren->jet(p, 0).g; }, pts, 1, false);
  auto expected = jet.dg.narrow(3, 1, 3).square().sum({1, 2, 3}).square();
  EXPECT_GT(expected.min().item<double>(), 0);
  EXPECT_TRUE(torch::allclose(v, expected, 1e-12, 0)) << v << expected;
}

Params Optimizer(std::map<std::string, ParamValue> values) {
  Params p;
  for (const auto& spec : OptimizerParams()) p.Set(spec.name(), *spec.default_value());
  for (const auto& [k, v] : values) p.Set(k, v);
  return p;
}

// Warm restarts: each cycle starts at peak_lr, falls by a cosine to lr over
// its first decay_fraction, then stays flat; geometric cycles T0 m^i.
TEST(Schedule, WarmRestartsFixedAndGeometric) {
  LearningRateSchedule constant(Optimizer({{"lr", 3e-4}}));
  EXPECT_EQ(constant.At(0), 3e-4);
  EXPECT_EQ(constant.At(12345), 3e-4);
  LearningRateSchedule fixed(Optimizer({{"schedule", std::string("warm_restarts")}, {"lr", 1e-5},
                                        {"peak_lr", 1e-4}, {"cycle_steps", int64_t{200}}}));
  EXPECT_DOUBLE_EQ(fixed.At(0), 1e-4);
  EXPECT_DOUBLE_EQ(fixed.At(20), 1e-5 + 9e-5 * 0.5);  // half-way down the 40-step ramp
  EXPECT_DOUBLE_EQ(fixed.At(40), 1e-5);
  EXPECT_DOUBLE_EQ(fixed.At(199), 1e-5);
  EXPECT_DOUBLE_EQ(fixed.At(200), 1e-4);
  EXPECT_DOUBLE_EQ(fixed.At(420), 1e-5 + 9e-5 * 0.5);
  LearningRateSchedule geometric(Optimizer({{"schedule", std::string("warm_restarts")}, {"lr", 1e-5},
                                            {"peak_lr", 1e-4}, {"cycle_steps", int64_t{500}},
                                            {"cycle_growth", 1.5}}));
  // Cycles of 500, 750, 1125: restarts at 0, 500, 1250, 2375.
  for (int64_t start : {0, 500, 1250, 2375}) EXPECT_DOUBLE_EQ(geometric.At(start), 1e-4) << start;
  EXPECT_DOUBLE_EQ(geometric.At(1249), 1e-5);
  EXPECT_DOUBLE_EQ(geometric.At(500 + 75), 1e-5 + 9e-5 * 0.5);  // ramp of 150 in cycle 2
}

DomainSpec Box(double t0, double t1) {
  DomainSpec d;
  d.name = "bulk";
  d.strata = {{"a", 10, t0, 0.5 * (t0 + t1)}, {"b", 10, 0.5 * (t0 + t1), t1}};
  d.x = d.y = d.z = {-1.0, 1.0};
  return d;
}

// The Lorentzian constraint on a metric that leaves the cone in known
// regions: g = diag(t - 1, 1 - x, 1, 1) + 2 s dt dy, s = 0.3 (a shift along
// y). gamma's smallest eigenvalue is min(1 - x, 1) and the lapse squared
// N^2 = s^2 - g_00 = 0.09 + 1 - t; so with tolerance 0.01 the violation is
// max(0, 0.01 - (1 - x)) + max(0, 0.01 - (1.09 - t)): 0 inside, growing
// past x = 0.99 and past t = 1.08 (the shift keeps t timelike up to there).
TEST(LorentzianConstraint, MarginsMatchTheClosedForm) {
  testing::FunctionMetric metric([](const torch::Tensor& x) {
    auto t = x.select(1, 0), X = x.select(1, 1);
    auto g = torch::diag_embed(torch::stack({t - 1, 1 - X, torch::ones_like(t), torch::ones_like(t)}, 1));
    auto shift = torch::zeros_like(g);
    shift.select(1, 0).select(1, 2).fill_(0.3);
    shift.select(1, 2).select(1, 0).fill_(0.3);
    return g + shift;
  });
  auto pts = torch::tensor({{0.0, 0.0, 0.2, 0.1}, {0.5, 0.995, 0.0, 0.0}, {0.5, 1.5, 0.0, 0.0},
                            {1.1, 0.0, 0.0, 0.0}, {2.0, 2.0, 0.0, 0.0}},
                           torch::kFloat64);
  PointSetContext ctx(metric, pts);
  auto lorentzian = MakeBuiltIn<LossTerm>("lorentzian", {{"tolerance", 0.01}});
  auto v = lorentzian->evaluate(ctx).per_point;
  auto want = torch::tensor({0.0, 0.005, 0.51, 0.02, (0.01 - (1 - 2.0)) + (0.01 - (1.09 - 2.0))},
                            torch::kFloat64);
  EXPECT_TRUE(torch::allclose(v, want, 0, 1e-12)) << v;
  // Its gradient reaches the metric where it is violated (a SIREN's
  // parameters through the jet), and is finite.
  torch::manual_seed(3);
  auto siren = MakeBuiltIn<MetricModel>("siren", {{"hidden", int64_t{8}}, {"layers", int64_t{1}},
                                                  {"output_init_std", 2.0}});
  siren->to(torch::kFloat64);
  PointSetContext sctx(*siren, torch::rand({64, 4}, torch::kFloat64) * 2 - 1);
  auto sv = lorentzian->evaluate(sctx).per_point;
  ASSERT_GT(sv.max().item<double>(), 0) << "a SIREN this far from Minkowski should leave the cone somewhere";
  sv.sum().backward();
  double norm = 0;
  for (auto& p : siren->parameters()) norm += p.grad().square().sum().item<double>();
  EXPECT_TRUE(std::isfinite(norm) && norm > 0) << norm;
}

// The grid runs through the domain's faces, edges and corners, so also
// through its latest time (today), where the post saw R dip.
TEST(HeldOut, GridCoversFacesEdgesCornersAndToday) {
  auto g = HeldOutGrid(Box(-4, 1), 32768, torch::kFloat64);
  // 13^3 spatial nodes, 15 times: 32955 points.
  ASSERT_EQ(g.size(0), 15 * 13 * 13 * 13);
  EXPECT_EQ(g.select(1, 0).min().item<double>(), -4);
  EXPECT_EQ(g.select(1, 0).max().item<double>(), 1);
  for (int a = 1; a < 4; ++a) {
    EXPECT_EQ(g.select(1, a).min().item<double>(), -1);
    EXPECT_EQ(g.select(1, a).max().item<double>(), 1);
  }
  // Every corner of the box is a grid point.
  for (double t : {-4.0, 1.0}) {
    for (double x : {-1.0, 1.0}) {
      auto corner = torch::tensor({t, x, -x, x}, torch::kFloat64);
      EXPECT_EQ((g - corner).abs().sum(1).min().item<double>(), 0) << t << " " << x;
    }
  }
  EXPECT_EQ(std::get<0>(torch::unique_dim(g, 0)).size(0), g.size(0));
}

Components KasnerLikeComponents(const DomainSpec* domain, LossSpec* spec) {
  Components c;
  c.model = MakeBuiltIn<MetricModel>("kasner", {{"p1", 1.0 / 3}, {"p2", 1.0 / 3}, {"p3", 1.0 / 3}});
  spec->name = "wec";
  spec->domain = "bulk";
  spec->kind = LossKind::kConstraint;
  c.domains.push_back({domain, MakeBuiltIn<CurriculumWeighter>("uniform")});
  c.losses.push_back({spec, MakeBuiltIn<LossTerm>("wec"), MakeBuiltIn<ConstraintHandler>("soft_quadratic")});
  return c;
}

// Isotropic Bianchi I, a = t^(1/3): R = -2/(3 t^2) < 0 everywhere, so the
// WEC violation is 2/(3 t^2); its held-out maximum sits at the earliest grid
// time and its mean is the grid average of the closed form. The descents
// cannot go lower than the face t = 0.5, where the grid already is.
TEST(HeldOut, CertifyMatchesTheClosedFormOfAKasnerLikeMetric) {
  DomainSpec domain = Box(0.5, 1.5);
  LossSpec spec;
  Components c = KasnerLikeComponents(&domain, &spec);
  auto j = Certify(c, 4096, torch::kFloat64, {}, 1000);
  ASSERT_TRUE(j.contains("bulk")) << j.dump();
  const int64_t ns = 8, nt = 8;  // 8^4 = 4096
  EXPECT_EQ(j["bulk"]["points"].get<int64_t>(), nt * ns * ns * ns);
  const double r_min = -2.0 / (3 * 0.25);
  EXPECT_NEAR(j["bulk"]["ricci_min"].get<double>(), r_min, 1e-12);
  EXPECT_NEAR(j["bulk"]["ricci_min_at"][0].get<double>(), 0.5, 1e-14);
  const auto& wec = j["bulk"]["constraints"]["wec"];
  EXPECT_NEAR(wec["max"].get<double>(), -r_min, 1e-12);
  double mean = 0;
  for (int i = 0; i < nt; ++i) {
    const double t = 0.5 + i / (nt - 1.0);
    mean += 2.0 / (3 * t * t) / nt;
  }
  EXPECT_NEAR(wec["mean"].get<double>(), mean, 1e-12);
  EXPECT_EQ(j["bulk"]["non_finite"].get<int64_t>(), 0);
  const auto& refined = j["bulk"]["refined"];
  EXPECT_NEAR(refined["ricci_min"].get<double>(), r_min, 1e-12);
  EXPECT_NEAR(wec["refined_max"].get<double>(), -r_min, 1e-12);
  EXPECT_GT(refined["evaluations"].get<int64_t>(), 0);
  // |grad R| = 4/(3 t^3) at most 32/3 on the box; the estimate is what the
  // descents met.
  EXPECT_GT(refined["lipschitz_estimate"].get<double>(), 0);
  EXPECT_LE(refined["lipschitz_estimate"].get<double>(), 32.0 / 3 * (1 + 1e-6));
}

// A static conformally flat metric g = e^(2 phi) eta with a narrow dip
// phi = eps exp(-|x - c|^2 / (2 w^2)) (eps < 0): R = -6 e^(-2 phi) (lap phi
// + |grad phi|^2), lowest at c, R(c) = 18 eps e^(-2 eps) / w^2 exactly. The
// dip's centre lies between grid nodes (half a spacing off along x): the
// grid sees a shallow value only, the descent from it finds R(c).
TEST(HeldOut, RefinementFindsADipBetweenTheGridPoints) {
  const double eps = -1e-3, w = 0.1;
  const std::array<double, 3> centre = {0.5, 1.0 / 3, 2.0 / 3};  // nodes at 0, 1/3, 2/3, 1
  auto metric = std::make_shared<testing::FunctionMetric>([=](const torch::Tensor& x) {
    auto d2 = (x.select(1, 1) - centre[0]).square() + (x.select(1, 2) - centre[1]).square() +
              (x.select(1, 3) - centre[2]).square();
    auto e2phi = torch::exp(2 * eps * torch::exp(-d2 / (2 * w * w)));
    auto eta = torch::tensor({-1.0, 1.0, 1.0, 1.0}, x.options());
    return torch::diag_embed(e2phi.unsqueeze(1) * eta);
  });
  DomainSpec domain;
  domain.name = "bulk";
  domain.strata = {{"all", 10, 0.0, 1.0}};
  domain.x = domain.y = domain.z = {0.0, 1.0};
  LossSpec spec;
  spec.name = "wec";
  spec.domain = "bulk";
  spec.kind = LossKind::kConstraint;
  Components c;
  c.model = metric;
  c.domains.push_back({&domain, MakeBuiltIn<CurriculumWeighter>("uniform")});
  c.losses.push_back({&spec, MakeBuiltIn<LossTerm>("wec"), MakeBuiltIn<ConstraintHandler>("soft_quadratic")});
  CertifyOptions o;
  o.refine_worst = 4;
  o.refine_random = 4;
  o.iterations = 80;
  auto j = Certify(c, 256, torch::kFloat64, o);  // 4^4 nodes
  const double truth = 18 * eps * std::exp(-2 * eps) / (w * w);
  const double grid = j["bulk"]["ricci_min"].get<double>();
  const double refined = j["bulk"]["refined"]["ricci_min"].get<double>();
  EXPECT_GT(grid, 0.05 * truth) << "the grid alone must miss the dip";
  EXPECT_NEAR(refined, truth, 1e-6) << j.dump(2);
  const auto at = j["bulk"]["refined"]["ricci_min_at"];
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(at[a + 1].get<double>(), centre[a], 1e-3) << j.dump(2);
  EXPECT_NEAR(j["bulk"]["constraints"]["wec"]["refined_max"].get<double>(), -truth, 1e-6);
  EXPECT_LE(refined, grid);
}

// The refined minimum is never above the grid's, on a random network.
TEST(HeldOut, RefinedMinimumIsNeverAboveTheGrid) {
  for (uint64_t seed : {1, 2, 3}) {
    torch::manual_seed(seed);
    DomainSpec domain = Box(-1, 1);
    LossSpec spec;
    Components c = KasnerLikeComponents(&domain, &spec);
    c.model = MakeBuiltIn<MetricModel>("siren", {{"hidden", int64_t{16}}, {"layers", int64_t{2}},
                                                 {"output_init_std", 0.3}});
    CertifyOptions o;
    o.refine_worst = 3;
    o.refine_random = 3;
    o.iterations = 10;
    o.seed = seed;
    auto j = Certify(c, 256, torch::kFloat64, o);
    EXPECT_LE(j["bulk"]["refined"]["ricci_min"].get<double>(), j["bulk"]["ricci_min"].get<double>());
    const auto& wec = j["bulk"]["constraints"]["wec"];
    EXPECT_GE(wec["refined_max"].get<double>(), wec["max"].get<double>());
  }
}

// What a handler sees: each point's value, or the mean over the points (the
// reference's CMB priors). The augmented Lagrangian with lambda = 2, mu = 4
// on v = (0, 1, 3): per point mean(2 v + 2 v^2) = 28/3; on the mean
// 2 (4/3) + 2 (4/3)^2 = 56/9, the same value at every point; the two differ
// by mu/2 Var(v) = 28/9. The update sees what the penalty saw.
TEST(HandlerOn, PointsOrTheMean) {
  auto v = torch::tensor({0.0, 1.0, 3.0}, torch::kFloat64);
  auto make = [] {
    return MakeBuiltIn<ConstraintHandler>("augmented_lagrangian", {{"lambda0", 2.0}, {"mu0", 4.0}});
  };
  auto per_point = ApplyHandler(*make(), v, false);
  auto on_mean = ApplyHandler(*make(), v, true);
  ASSERT_TRUE(per_point.ok() && on_mean.ok());
  EXPECT_NEAR(per_point->penalty.total.item<double>(), 28.0 / 3, 1e-14);
  EXPECT_NEAR(per_point->penalty.per_point.mean().item<double>(), 28.0 / 3, 1e-14);
  EXPECT_NEAR(on_mean->penalty.total.item<double>(), 56.0 / 9, 1e-14);
  EXPECT_TRUE(torch::allclose(on_mean->penalty.per_point, torch::full({3}, 56.0 / 9, torch::kFloat64), 0, 1e-14));
  EXPECT_NEAR(per_point->penalty.total.item<double>() - on_mean->penalty.total.item<double>(), 28.0 / 9, 1e-14);
  EXPECT_EQ(per_point->input.sizes(), torch::IntArrayRef({3}));
  EXPECT_EQ(on_mean->input.sizes(), torch::IntArrayRef({1}));
  // Both updates move lambda by mu mean(v) = 16/3.
  for (bool mean : {false, true}) {
    auto h = make();
    auto applied = ApplyHandler(*h, v, mean);
    h->update(applied->input, 0);
    EXPECT_NEAR(h->telemetry()[0].second, 2 + 16.0 / 3, 1e-14);
  }
}

// A handler that returns another shape is refused with a message.
TEST(HandlerOn, AWrongShapeIsRefused) {
  struct Broken : ConstraintHandler {
    Penalty penalty(const torch::Tensor& v) override { return {v.sum().reshape({1}), v.sum()}; }
  } broken;
  auto r = ApplyHandler(broken, torch::ones({4}, torch::kFloat64), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("returned a penalty of shape [1]"), std::string::npos)
      << r.status();
}

// A handler whose total is not the mean of its per-point values is refused:
// the engine reduces per_point, summaries read total.
TEST(HandlerOn, ATotalThatIsNotTheMeanIsRefused) {
  struct Summing : ConstraintHandler {
    Penalty penalty(const torch::Tensor& v) override { return {v, v.sum()}; }
  } summing;
  auto r = ApplyHandler(summing, torch::ones({4}, torch::kFloat64), false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(std::string(r.status().message()),
            "returned a total of 4 but its per-point values average 1; Penalty::total must be mean(per_point)");
  EXPECT_TRUE(ApplyHandler(summing, torch::ones({1}, torch::kFloat64), false).ok());
}

}  // namespace
}  // namespace lumpy
