// `lumpy study` and `lumpy claims`: a study run, collected, skipped when
// done and measured, each measurement against the run's own files read
// independently here; bad input (an unknown measurement, a stage file that
// does not exist, a result folder that is missing) reported where it is,
// every other claim still computed; and the committed claims table is what
// the committed runs give.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

// A column of a metrics.csv, read here without the project's reader.
std::vector<double> Column(const fs::path& csv, const std::string& name) {
  std::istringstream in(testing::ReadFile(csv));
  std::string line;
  std::getline(in, line);
  int index = -1, i = 0;
  for (std::stringstream h(line); std::getline(h, line, ','); ++i) {
    if (line == name) index = i;
  }
  std::vector<double> out;
  if (index < 0) return out;
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string cell;
    for (int k = 0; k <= index; ++k) std::getline(row, cell, ',');
    out.push_back(std::strtod(cell.c_str(), nullptr));
  }
  return out;
}

const nlohmann::json* FindClaim(const nlohmann::json& claims, const std::string& id) {
  for (const auto& p : claims["posts"]) {
    for (const auto& c : p["claims"]) {
      if (c["id"] == id) return &c;
    }
  }
  return nullptr;
}

class StudyTest : public testing::TempDirTest {};

TEST_F(StudyTest, RunsCollectsSkipsAndMeasuresAndReportsBadInputWhereItIs) {
  const std::string quickstart = std::string(LUMPY_TEST_SOURCE_DIR) + "/../experiments/quickstart.toml";
  Write(dir_ / "study" / "study.toml",
        "[[run]]\nname = \"q_s3\"\nstage = 1\nvariant = \"corrected\"\nseed = 3\nexperiment = \"" + quickstart +
            "\"\n\n[[run]]\nname = \"gone\"\nstage = 1\nvariant = \"as_run\"\nexperiment = \"nope.toml\"\n");
  Write(dir_ / "study" / "claims" / "01_q.toml", R"(post = 1
title = "quick"
commit = "-"
file = "-"

[[claim]]
id = "q.sn"
words = "fits"
quantity = "SN chi^2/N at the end"
measurement = "final"
column = "sn"
rule = "at_most"
threshold = 1e9

[[claim]]
id = "q.loss_min"
words = "the loss falls"
quantity = "smallest loss"
measurement = "min"
column = "loss"
rule = "exists"
variants = ["corrected"]

[[claim]]
id = "q.h_today"
words = "expanding today"
quantity = "H_mean at t = 1"
measurement = "worldline_at"
column = "H_mean"
at = 1.0
rule = "positive"
variants = ["corrected"]

[[claim]]
id = "q.bogus"
words = "something"
quantity = "something"
measurement = "bogus"
rule = "positive"
)");
  auto first = testing::RunLumpy("study study/study.toml --steps 12 --results out --work work", dir_);
  EXPECT_EQ(first.exit_code, 1) << first.err;  // a run could not run
  // The stage file that does not exist: located, and the other run ran.
  EXPECT_NE(first.err.find("study.toml:"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("run[1].experiment"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("nope.toml: no such stage file"), std::string::npos) << first.err;
  // The unknown measurement: located in its claim file, naming the choices.
  EXPECT_NE(first.err.find("01_q.toml:"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("claim[3].measurement"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("bogus"), std::string::npos) << first.err;
  for (const char* f : {"summary.json", "metrics.csv.gz", "experiment.toml", "model_final.pt", "model_best.pt"}) {
    EXPECT_TRUE(fs::is_regular_file(dir_ / "out" / "q_s3" / f)) << f;
  }
  ASSERT_TRUE(fs::is_regular_file(dir_ / "out" / "claims.json")) << first.err;
  const auto claims = nlohmann::json::parse(testing::ReadFile(dir_ / "out" / "claims.json"));
  // Every other claim is computed, from the compressed metrics and the
  // collected model, and agrees with the run folder's own files.
  const auto sn = Column(dir_ / "work" / "q_s3" / "metrics.csv", "sn");
  const auto loss = Column(dir_ / "work" / "q_s3" / "metrics.csv", "loss");
  ASSERT_FALSE(sn.empty());
  const auto* c_sn = FindClaim(claims, "q.sn");
  ASSERT_NE(c_sn, nullptr);
  EXPECT_EQ((*c_sn)["corrected"]["values"]["q_s3"].get<double>(), sn.back());  // the CSV's text, both ways
  EXPECT_EQ((*c_sn)["corrected"]["verdict"], "reproduced");
  EXPECT_EQ((*c_sn)["as_run"]["verdict"], "not testable");  // its result folder is missing
  EXPECT_NE((*c_sn)["as_run"]["why"].get<std::string>().find("out/gone is missing"), std::string::npos)
      << (*c_sn)["as_run"]["why"];
  const auto* c_loss = FindClaim(claims, "q.loss_min");
  EXPECT_EQ((*c_loss)["corrected"]["values"]["q_s3"].get<double>(), *std::min_element(loss.begin(), loss.end()));
  // The world line at t = 1 is the observer the run itself probed at its end
  // (float64 both ways).
  const auto summary = nlohmann::json::parse(testing::ReadFile(dir_ / "out" / "q_s3" / "summary.json"));
  const double h = (*FindClaim(claims, "q.h_today"))["corrected"]["values"]["q_s3"].get<double>();
  EXPECT_NEAR(h, summary["observer"]["H_mean"].get<double>(), 1e-9 * std::abs(h) + 1e-15);
  EXPECT_TRUE((*FindClaim(claims, "q.bogus")).contains("error"));
  const std::string md = testing::ReadFile(dir_ / "out" / "claims.md");
  EXPECT_NE(md.find("`q.sn`"), std::string::npos);
  EXPECT_NE(md.find("corrected: **reproduced**"), std::string::npos) << md;

  // Done is skipped: nothing runs again (the run's log does not grow).
  const auto log_size = fs::file_size(dir_ / "work" / "q_s3.log");
  auto again = testing::RunLumpy("study study/study.toml --steps 12 --results out --work work --only q_s3 --no-claims",
                                 dir_);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("q_s3: done"), std::string::npos) << again.err;
  EXPECT_EQ(fs::file_size(dir_ / "work" / "q_s3.log"), log_size);

  // The exported best model is the best checkpoint's metric: claims made on
  // the run folder itself (checkpoints/best.pt) give the same numbers.
  Write(dir_ / "study" / "claims_best" / "01_q.toml", R"(post = 1
title = "quick"
commit = "-"
file = "-"

[[claim]]
id = "q.shear_best"
words = "w"
quantity = "q"
measurement = "worldline_max"
column = "shear_sq"
checkpoint = "best"
rule = "exists"
variants = ["corrected"]
)");
  auto exported = testing::RunLumpy("claims study/claims_best --study study/study.toml --results out --out c1", dir_);
  auto direct = testing::RunLumpy("claims study/claims_best --study study/study.toml --results work --out c2", dir_);
  const auto v1 = nlohmann::json::parse(testing::ReadFile(dir_ / "c1" / "claims.json"));
  const auto v2 = nlohmann::json::parse(testing::ReadFile(dir_ / "c2" / "claims.json"));
  const auto& x1 = (*FindClaim(v1, "q.shear_best"))["corrected"]["values"]["q_s3"];
  const auto& x2 = (*FindClaim(v2, "q.shear_best"))["corrected"]["values"]["q_s3"];
  ASSERT_TRUE(x1.is_number()) << exported.err;
  ASSERT_TRUE(x2.is_number()) << direct.err;
  EXPECT_EQ(x1.get<double>(), x2.get<double>());
}

TEST_F(StudyTest, AShortenedPassNeverReplacesTheStudysResults) {
  Write(dir_ / "s.toml", "[[run]]\nname = \"a\"\nstage = 1\nvariant = \"v\"\nexperiment = \"x.toml\"\n");
  auto r = testing::RunLumpy("study s.toml --steps 5", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--results"), std::string::npos) << r.err;
  auto only = testing::RunLumpy("study s.toml --only b --dry-run", dir_);
  EXPECT_EQ(only.exit_code, 2);
  EXPECT_NE(only.err.find("names no run b"), std::string::npos) << only.err;
}

// What CI checks: experiments/blog/claims.md, and the claim tables in
// RESULTS.md, are exactly what `lumpy claims` computes from the committed
// result folders and claim files.
TEST_F(StudyTest, TheCommittedClaimsTableIsWhatTheCommittedRunsGive) {
  const fs::path blog = fs::path(LUMPY_TEST_SOURCE_DIR) / ".." / "experiments" / "blog";
  fs::create_directories(dir_ / "out");
  fs::copy_file(blog / "RESULTS.md", dir_ / "out" / "RESULTS.md");  // its tables between the markers too
  auto r = testing::RunLumpy("claims --study '" + (blog / "study.toml").string() + "' --out out", dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* file : {"claims.md", "RESULTS.md"}) {
    const std::string made = testing::ReadFile(dir_ / "out" / file);
    const std::string committed = testing::ReadFile(blog / file);
    ASSERT_FALSE(made.empty()) << r.err;
    if (made == committed) continue;
    std::istringstream a(committed), b(made);
    std::string la, lb;
    int line = 1;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) ++line;
    ADD_FAILURE() << "experiments/blog/" << file << " differs from what the committed runs give at line " << line
                  << ":\n  committed: " << la << "\n  computed:  " << lb
                  << "\nregenerate it: lumpy claims (from the repository's root)";
  }
}

}  // namespace
}  // namespace lumpy
