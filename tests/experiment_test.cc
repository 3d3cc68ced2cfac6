// Validation and construction of experiments against an in-process registry.

#include "config/experiment.h"

#include <gtest/gtest.h>

#include <fstream>

namespace lumpy {
namespace {

namespace fs = std::filesystem;

class NullMetric : public MetricModel {
 public:
  Jet jet(const torch::Tensor& x, int) override { return {torch::zeros({x.size(0), 4, 4}), {}, {}, 0}; }
};
class NullLoss : public LossTerm {
 public:
  LossValue evaluate(StepContext& c) override { return {torch::zeros({c.points().size(0)}), torch::zeros({})}; }
};
class MeanWeighter : public CurriculumWeighter {
 public:
  void set_bounds(const DomainBounds& b) override { bounds = b, ++bound_calls; }
  torch::Tensor reduce(const torch::Tensor&, const torch::Tensor& l) override { return l.mean(); }
  DomainBounds bounds;
  int bound_calls = 0;
};

class ExperimentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A metric whose factory rejects odd widths, as a plugin may reject
    // combinations that per-key ranges cannot express.
    ASSERT_TRUE(registry_
                    .AddMetric("picky", "test", {ParamSpec::Int("hidden", "").Default(int64_t{4})},
                               [](const Params& p) -> absl::StatusOr<std::shared_ptr<MetricModel>> {
                                 if (p.GetInt("hidden") % 2) {
                                   return ParamError("hidden", "must be even");
                                 }
                                 return std::make_shared<NullMetric>();
                               })
                    .ok());
    ASSERT_TRUE(registry_
                    .AddLoss("null", "test", LossKind::kObjective, {},
                             [](const Params&) -> absl::StatusOr<std::shared_ptr<LossTerm>> {
                               return std::make_shared<NullLoss>();
                             })
                    .ok());
    ASSERT_TRUE(registry_
                    .AddCurriculum("uniform", "test", {},
                                   [](const Params&) -> absl::StatusOr<std::shared_ptr<CurriculumWeighter>> {
                                     return std::make_shared<MeanWeighter>();
                                   })
                    .ok());
    file_ = fs::temp_directory_path() / ("lumpy_experiment_test_" + std::to_string(::getpid()) + ".toml");
  }
  void TearDown() override { fs::remove(file_); }
  absl::StatusOr<Experiment> Load(const std::string& text, std::vector<std::string> sets = {}) {
    std::ofstream(file_) << text;
    return LoadExperiment(file_, sets, loader_, registry_);
  }
  Registry registry_;
  PluginLoader loader_{registry_};
  fs::path file_;
};

const char* kValid =
    "[model]\nplugin = \"picky\"\nhidden = 3\n"
    "[domains.d.strata.s]\ncount = 2\nt = [0.0, 1.0]\n"
    "[loss.l]\nplugin = \"null\"\ndomain = \"d\"\n";

TEST_F(ExperimentTest, FactoryRejectionIsReportedAtTheKey) {
  auto exp = Load(kValid);
  ASSERT_TRUE(exp.ok()) << exp.status();
  auto components = Instantiate(*exp);
  EXPECT_EQ(components.status().message(), file_.string() + ":3:10: model.hidden: must be even");
  EXPECT_EQ(components.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ExperimentTest, FactoryRejectionOfAnOverrideNamesTheOverride) {
  auto exp = Load(kValid, {"model.hidden=5"});
  ASSERT_TRUE(exp.ok());
  EXPECT_EQ(Instantiate(*exp).status().message(),
            "--set model.hidden=5: model.hidden: must be even");
}

TEST_F(ExperimentTest, DefaultsAreFilledAndComponentsBuilt) {
  auto exp = Load(kValid, {"model.hidden=6"});
  ASSERT_TRUE(exp.ok());
  EXPECT_EQ(exp->name, file_.stem().string());
  EXPECT_EQ(exp->runtime.GetInt("steps"), 1000);
  EXPECT_EQ(exp->domains[0].total_points(), 2);
  EXPECT_EQ(exp->losses[0].weight, 1.0);
  EXPECT_EQ(exp->resolved.Find("domains")->Find("d")->Find("curriculum")->Find("plugin")->as_string(),
            "uniform");
  auto c = Instantiate(*exp);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->losses.size(), 1u);
  EXPECT_EQ(c->domains.size(), 1u);
}

// A curriculum is given its domain's box when it is built: t from the
// earliest stratum's start to the latest one's end, x, y, z as declared
// (y, z defaulted).
TEST_F(ExperimentTest, ACurriculumIsGivenItsDomainsBox) {
  auto exp = Load(std::string(kValid) + "[domains.d]\nx = [-0.5, 0.25]\n[domains.d.strata.early]\ncount = 1\nt = [-2.0, 0.5]\n",
                  {"model.hidden=6"});
  ASSERT_TRUE(exp.ok()) << exp.status();
  auto c = Instantiate(*exp);
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& w = dynamic_cast<const MeanWeighter&>(*c->domains[0].weighter);
  EXPECT_EQ(w.bound_calls, 1);
  EXPECT_EQ(w.bounds.lo, (std::array<double, 4>{-2.0, -0.5, -1.0, -1.0}));
  EXPECT_EQ(w.bounds.hi, (std::array<double, 4>{1.0, 0.25, 1.0, 1.0}));
}

}  // namespace
}  // namespace lumpy
