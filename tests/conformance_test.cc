// The SDK's conformance kit (lumpy/testing/conformance.h) on every built-in
// metric, constraint handler and curriculum, with the variants whose code
// paths differ (the SIREN's fused, tensor and autograd jets; the augmented
// Lagrangian's adaptive, frozen and safeguarded multipliers). A plugin the
// list does not name fails the coverage test, so a new built-in is checked
// from the day it lands.

#include "lumpy/testing/conformance.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <map>

#include <functional>
#include <set>

#include "built_in_plugins.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;
using Overrides = std::map<std::string, ParamValue>;

struct Variant {
  std::string plugin;
  Overrides params;
};

const std::vector<Variant>& Metrics() {
  static const std::vector<Variant> v = {
      {"siren", {{"output_init_std", 0.05}}},
      {"siren", {{"output_init_std", 0.05}, {"fused", false}}},
      {"siren", {{"output_init_std", 0.05}, {"jet", std::string("autograd")}, {"omega0", 10.0}}},
      {"minkowski", {}},
      {"flrw", {}},
      {"flrw", {{"scale_factor", std::string("lcdm")}, {"omega_m_trainable", true}}},
      {"flrw", {{"scale_factor", std::string("de_sitter")}}},
      {"kasner", {}},
      {"schwarzschild", {}},
      {"ltb", {}},
      {"ltb", {{"bang_amplitude", -0.6}, {"bang_width", 0.4}, {"center", std::vector<double>{0.35, 0.0, -0.1}}}},
  };
  return v;
}

const std::vector<Variant>& Handlers() {
  static const std::vector<Variant> v = {
      {"soft_quadratic", {}},
      {"linear", {}},
      {"augmented_lagrangian", {}},
      {"augmented_lagrangian", {{"adaptive", true}, {"check_every", int64_t{2}}, {"tau", 0.5}}},
      {"augmented_lagrangian", {{"freeze_multiplier", true}}},
      {"augmented_lagrangian", {{"lambda_max", 10.0}, {"feasibility_tol", 1e-6}}},
      {"homoscedastic", {}},
      {"homoscedastic", {{"base", std::string("linear")}}},
  };
  return v;
}

const std::vector<Variant>& Curricula() {
  static const std::vector<Variant> v = {{"uniform", {}}, {"spatial_weight_net", {}}, {"spatial_weight_net", {{"w_min", -4.0}}}};
  return v;
}

std::string Label(const Variant& v) {
  std::string out = v.plugin;
  for (const auto& [k, value] : v.params) out += " " + k + "=" + FormatParamValue(value);
  return out;
}

TEST(Conformance, EveryBuiltInMetricConforms) {
  // t in [0.5, 2] (Kasner and the FLRW scale factors are regular there), r <= 1
  // plus points far out for Schwarzschild's domain r > 2M.
  auto points = torch::cat({testing::UniformPoints(12, 0.5, 2.0, 1.0), testing::UniformPoints(12, 0.5, 2.0, 6.0, 7)});
  for (const auto& v : Metrics()) {
    SCOPED_TRACE(Label(v));
    testing::ExpectMetricConforms([&] { return MakeBuiltIn<MetricModel>(v.plugin, v.params); }, points);
  }
}

TEST(Conformance, EveryBuiltInHandlerConforms) {
  for (const auto& v : Handlers()) {
    SCOPED_TRACE(Label(v));
    testing::ExpectHandlerConforms([&] { return MakeBuiltIn<ConstraintHandler>(v.plugin, v.params); });
  }
}

TEST(Conformance, EveryBuiltInCurriculumConforms) {
  for (const auto& v : Curricula()) {
    SCOPED_TRACE(Label(v));
    testing::ExpectCurriculumConforms([&] { return MakeBuiltIn<CurriculumWeighter>(v.plugin, v.params); });
  }
}

// Point terms on a small SIREN (float64) at points from t = -3.5 to today;
// dataset terms on flat LCDM, whose rays reach every target.
const std::vector<Variant>& Losses() {
  static const std::vector<Variant> v = {
      {"efe_residual", {}},
      {"efe_residual", {{"form", std::string("covariant")}}},
      {"wec", {}},
      {"lorentzian", {}},
      {"cmb_expansion", {}},
      {"cmb_isotropy", {}},
      {"cmb_homogeneity", {}},
      {"supernova_chi2", {}},
      {"supernova_chi2", {{"mode", std::string("physical")}, {"bins", int64_t{8}}}},
      {"supernova_chi2", {{"interpolation", std::string("reference")}}},
      {"bao_chi2", {}},
  };
  return v;
}

TEST(Conformance, EveryBuiltInLossTermConforms) {
  torch::manual_seed(0);
  auto siren = MakeBuiltIn<MetricModel>("siren", {{"output_init_std", 0.05}});
  siren->to(torch::kFloat64);
  auto lcdm = MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("lcdm")}});
  const auto points = testing::UniformPoints(12, -3.5, 1.0);
  for (const auto& v : Losses()) {
    SCOPED_TRACE(Label(v));
    const LossKind kind = testing::BuiltInPlugins().Find(PluginKind::kLoss, v.plugin)->loss_kind;
    MetricModel& metric = kind == LossKind::kDataset ? *lcdm : *siren;
    testing::ExpectLossTermConforms([&] { return MakeBuiltIn<LossTerm>(v.plugin, v.params); }, kind, metric,
                                    points);
  }
}

TEST(Conformance, TheListsCoverEveryBuiltIn) {
  const std::pair<PluginKind, const std::vector<Variant>*> kinds[] = {
      {PluginKind::kMetric, &Metrics()}, {PluginKind::kConstraint, &Handlers()}, {PluginKind::kCurriculum, &Curricula()},
      {PluginKind::kLoss, &Losses()}};
  for (const auto& [kind, variants] : kinds) {
    std::set<std::string> listed;
    for (const auto& v : *variants) listed.insert(v.plugin);
    for (const auto& name : testing::BuiltInPlugins().Names(kind)) {
      EXPECT_TRUE(listed.count(name)) << PluginKindName(kind) << " \"" << name
                                      << "\" is not checked by the conformance kit; add it to this file";
    }
  }
}

// The kit fails what breaks the contract: a handler whose total is not the
// mean of its per-point penalty, one whose telemetry names change, and one
// that keeps what its penalty uses outside its registered state.
//
// Flaws: 0 total = sum; 1 telemetry renamed; 2 penalty reads a plain member;
// 3 none; 4 an average of the violations kept as a plain member, read only
// by update() (it passed the kit, and a resumed run diverged 45 steps
// later); 5 the penalty detached from the violation; 6 a penalty that ignores
// the violation; 7 a gradient that is not the penalty's (a straight-through
// trick: value w v, gradient 3 w).
class Broken : public ConstraintHandler {
 public:
  explicit Broken(int flaw) : flaw_(flaw), weight_(register_buffer("weight", torch::tensor(1.0, torch::kFloat64))) {}
  Penalty penalty(const torch::Tensor& v) override {
    torch::Tensor per_point = (flaw_ == 2 ? unregistered_ : weight_.item<double>()) * v;
    if (flaw_ == 5) per_point = per_point.detach();
    if (flaw_ == 6) per_point = weight_ * torch::ones_like(v) + 0 * v;
    if (flaw_ == 7) per_point = per_point + 2 * (per_point - per_point.detach());
    return {per_point, flaw_ == 0 ? per_point.sum() : per_point.mean()};
  }
  void update(const torch::Tensor& v, int64_t step) override {
    torch::NoGradGuard no_grad;
    if (flaw_ == 4) {
      average_ = 0.5 * average_ + v.mean().item<double>();
      weight_.fill_(1.0 + average_);
    } else {
      weight_.add_(1);
    }
    unregistered_ += 1;
    step_ = step;
  }
  std::vector<std::pair<std::string, double>> telemetry() const override {
    if (flaw_ == 1 && step_ > 0) return {{"renamed", weight_.item<double>()}};
    return {{"weight", weight_.item<double>()}};
  }

 private:
  int flaw_;
  torch::Tensor weight_;
  double unregistered_ = 1.0, average_ = 0.0;
  int64_t step_ = -1;
};

// The messages of the failures f() reports (intercepted: they do not fail
// this test).
std::vector<std::string> Failures(const std::function<void()>& f) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    f();
  }
  std::vector<std::string> out;
  for (int i = 0; i < results.size(); ++i) out.push_back(results.GetTestPartResult(i).message());
  return out;
}

TEST(Conformance, TheKitFailsBrokenHandlers) {
  const std::map<int, const char*> expected = {
      {0, "!= mean(per_point)"},
      {1, "telemetry names must not change"},
      {2, "gives another penalty"},
      {4, "diverges 1 update(s) after its checkpoint"},
      {5, "the penalty is detached from the violation"},
      {6, "the penalty does not depend on the violation"},
      {7, "finite differences"}};
  for (const auto& [flaw, message] : expected) {
    SCOPED_TRACE("flaw " + std::to_string(flaw));
    const auto failures = Failures([flaw] { testing::ExpectHandlerConforms([flaw] { return std::make_shared<Broken>(flaw); }); });
    ASSERT_FALSE(failures.empty());
    bool named = false;
    for (const auto& f : failures) named |= f.find(message) != std::string::npos;
    EXPECT_TRUE(named) << failures.front();
  }
  // The sound one passes.
  EXPECT_EQ(Failures([] { testing::ExpectHandlerConforms([] { return std::make_shared<Broken>(3); }); }),
            std::vector<std::string>{});
}

// Curricula that break the contract: 0 anneals its buffer inside reduce()
// (what the interface once forced: it had no update()); 1 keeps a count of
// updates as a plain member, so a resumed copy anneals differently; 2 is
// sound (a buffer annealed in update(), slices from set_bounds()).
class AnnealingCurriculum : public CurriculumWeighter {
 public:
  explicit AnnealingCurriculum(int flaw)
      : flaw_(flaw), epsilon_(register_buffer("epsilon", torch::tensor(0.5, torch::kFloat64))) {}
  void set_bounds(const DomainBounds& b) override { t0_ = b.lo[0], t1_ = b.hi[0]; }
  torch::Tensor reduce(const torch::Tensor& points, const torch::Tensor& loss) override {
    if (flaw_ == 0) epsilon_.mul_(1.01);
    const auto late = (points.select(1, 0) - t0_) / (t1_ - t0_);  // 0 at the domain's start, 1 at its end
    return (torch::exp(-epsilon_ * late) * loss).mean();
  }
  void update(const torch::Tensor&, const torch::Tensor&, int64_t) override {
    torch::NoGradGuard no_grad;
    ++updates_;
    epsilon_.mul_(flaw_ == 1 ? 1.0 + 0.01 * updates_ : 1.01);
  }

 private:
  int flaw_;
  torch::Tensor epsilon_;
  double t0_ = 0, t1_ = 1;
  int updates_ = 0;
};

TEST(Conformance, TheKitFailsCurriculaThatKeepStateWrongly) {
  const char* expected[] = {"reduce() changed the curriculum's state", "diverges 1 update(s) after its checkpoint"};
  for (int flaw = 0; flaw < 2; ++flaw) {
    SCOPED_TRACE("flaw " + std::to_string(flaw));
    const auto failures =
        Failures([flaw] { testing::ExpectCurriculumConforms([flaw] { return std::make_shared<AnnealingCurriculum>(flaw); }); });
    ASSERT_FALSE(failures.empty());
    bool named = false;
    for (const auto& f : failures) named |= f.find(expected[flaw]) != std::string::npos;
    EXPECT_TRUE(named) << failures.front();
  }
  EXPECT_EQ(Failures([] { testing::ExpectCurriculumConforms([] { return std::make_shared<AnnealingCurriculum>(2); }); }),
            std::vector<std::string>{});
}

// g = diag(-1, 1 + x^2, 1, 1) with a hand-written jet whose d_x g_xx is x
// (it is 2x): the kit names the wrong derivative.
class WrongJet : public MetricModel {
 public:
  Jet jet(const torch::Tensor& p, int order) override {
    const int64_t b = p.size(0);
    auto x = p.select(1, 1);
    auto g = torch::diag_embed(torch::stack({-torch::ones_like(x), 1 + x * x, torch::ones_like(x), torch::ones_like(x)}, 1));
    Jet jet{g, {}, {}, order};
    if (order >= 1) {
      jet.dg = torch::zeros({b, 4, 4, 4}, p.options());
      jet.dg.select(1, 1).select(1, 1).select(1, 1).copy_(x);
    }
    if (order >= 2) {
      jet.d2g = torch::zeros({b, 4, 4, 4, 4}, p.options());
      jet.d2g.select(1, 1).select(1, 1).select(1, 1).select(1, 1).fill_(2.0);
    }
    return jet;
  }
};

TEST(Conformance, TheKitFailsAWrongJet) {
  const auto failures = Failures([] {
    testing::ExpectMetricConforms([] { return std::make_shared<WrongJet>(); }, testing::UniformPoints(8));
  });
  ASSERT_FALSE(failures.empty());
  bool named = false;
  for (const auto& f : failures) named |= f.find("dg[b,i,j,k] must be d_k g_ij") != std::string::npos;
  EXPECT_TRUE(named) << failures.front();
}

// The kit fails a point term whose value is detached from the metric, and
// one whose gradient is not its value's (straight-through: value g00^2,
// gradient 3x).
class DetachedTerm : public LossTerm {
 public:
  explicit DetachedTerm(bool detach) : detach_(detach) {}
  LossValue evaluate(StepContext& ctx) override {
    auto per_point = ctx.geometry(0).metric().select(1, 0).select(1, 0).square();
    per_point = detach_ ? per_point.detach() : per_point + 2 * (per_point - per_point.detach());
    return {per_point, per_point.mean()};
  }

 private:
  bool detach_;
};

TEST(Conformance, TheKitFailsALossTermWithoutItsGradient) {
  for (bool detach : {true, false}) {
    SCOPED_TRACE(detach ? "detached" : "straight-through");
    torch::manual_seed(0);
    auto siren = MakeBuiltIn<MetricModel>("siren");
    siren->to(torch::kFloat64);
    const auto failures = Failures([&] {
      testing::ExpectLossTermConforms([detach] { return std::make_shared<DetachedTerm>(detach); },
                                      LossKind::kObjective, *siren, testing::UniformPoints(4));
    });
    ASSERT_FALSE(failures.empty());
    EXPECT_NE(failures.front().find(detach ? "detached from the metric's parameters" : "finite differences"),
              std::string::npos)
        << failures.front();
  }
}

// The kit fails a point term whose value is not the mean of per_point.
class SumNotMean : public LossTerm {
 public:
  LossValue evaluate(StepContext& ctx) override {
    auto per_point = ctx.geometry(0).metric().select(1, 0).select(1, 0).square();
    return {per_point, per_point.sum()};
  }
};

TEST(Conformance, TheKitFailsALossTermWhoseValueIsNotItsMean) {
  auto flat = MakeBuiltIn<MetricModel>("minkowski");
  const auto failures = Failures([&] {
    testing::ExpectLossTermConforms([] { return std::make_shared<SumNotMean>(); }, LossKind::kObjective, *flat,
                                    testing::UniformPoints(4));
  });
  ASSERT_FALSE(failures.empty());
  EXPECT_NE(failures.front().find("!= mean(per_point)"), std::string::npos) << failures.front();
}

// The kit fails what a term offers the report when it is wrong: a probe
// column on a dataset term, and a Hubble diagram whose reached objects have
// no model modulus.
class BadReport : public LossTerm, public ProbeColumnSource, public HubbleDiagramSource {
 public:
  LossValue evaluate(StepContext& ctx) override {
    return {{}, torch::zeros({}, ctx.options())};
  }
  std::string probe_column() const override { return "chi2"; }
  absl::StatusOr<HubbleDiagram> hubble_diagram(MetricModel&, const torch::TensorOptions&, const Event&) override {
    HubbleDiagram d;
    HubbleDiagram::Object o;
    o.name = "a";
    o.z = 0.1;
    o.mu_obs = 38.0;
    o.sigma = 0.2;
    o.reached = true;  // but mu_model stays NaN
    d.objects.push_back(o);
    return d;
  }
};

TEST(Conformance, TheKitFailsWhatATermWronglyOffersTheReport) {
  auto flat = MakeBuiltIn<MetricModel>("minkowski");
  const auto failures = Failures([&] {
    testing::ExpectLossTermConforms([] { return std::make_shared<BadReport>(); }, LossKind::kDataset, *flat,
                                    testing::UniformPoints(4));
  });
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_NE(failures[0].find("no per-point value for a probe column"), std::string::npos) << failures[0];
  EXPECT_NE(failures[1].find("without a finite mu_model"), std::string::npos) << failures[1];
}

}  // namespace
}  // namespace lumpy
