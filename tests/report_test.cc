// `lumpy report`: its tables against closed forms and the run's own numbers,
// its figures, and its refusals.

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analytic_metrics.h"
#include "cli/report.h"
#include "cli_runner.h"
#include "lumpy/supernovae.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using Table = std::map<std::string, std::vector<double>>;

Table ReadTable(const fs::path& file, std::vector<std::string>* text_column = nullptr,
                const std::string& text_name = "") {
  std::istringstream in(testing::ReadFile(file));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  for (std::stringstream h(line); std::getline(h, line, ',');) header.push_back(line);
  Table t;
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string cell;
    for (size_t i = 0; i < header.size(); ++i) {
      if (!std::getline(row, cell, ',')) cell.clear();
      if (header[i] == text_name && text_column) text_column->push_back(cell);
      t[header[i]].push_back(cell.empty() ? NAN : std::strtod(cell.c_str(), nullptr));
    }
  }
  return t;
}

constexpr double kC = 299792.458;  // km/s

// The part-1 notebook's kinematics against the correct ones on
// g = -dt^2 + a^2 dx^2 + 2 eps (x dt dx + 2 y dt dy + 3 z dt dz), a = e^(0.3 t):
// on the world line x = y = z = 0 the shift vanishes, so the correct
// H_mean = a'/a = 0.3 and sigma^2 = 0; the notebook's d_c g_a0 =
// eps diag(1, 2, 3) gives H_mean = eps / a^2 and sigma^2 = eps^2 / (4 a^4).
TEST(NotebookKinematics, TheNotebookReadTheShiftNotTheExpansion) {
  const double eps = 0.02;
  auto metric = testing::FunctionMetric([=](const torch::Tensor& x) {
    auto t = x.select(1, 0);
    auto a2 = torch::exp(0.6 * t);
    auto g = torch::diag_embed(torch::stack({-torch::ones_like(t), a2, a2, a2}, 1));
    auto shift = torch::stack({eps * x.select(1, 1), 2 * eps * x.select(1, 2), 3 * eps * x.select(1, 3)}, 1);
    auto row = torch::cat({torch::zeros_like(t).unsqueeze(1), shift}, 1);  // g_0mu
    auto e0 = torch::tensor({1.0, 0.0, 0.0, 0.0}, x.options());
    return g + row.unsqueeze(2) * e0.view({1, 1, 4}) + row.unsqueeze(1) * e0.view({1, 4, 1});
  });
  auto t = torch::linspace(-4, 1, 11, torch::kFloat64);
  auto points = torch::zeros({11, 4}, torch::kFloat64);
  points.select(1, 0).copy_(t);
  Jet jet = metric.jet(points, 1);
  auto [h, s] = WorldLineKinematics(jet, false);
  auto [hn, sn] = WorldLineKinematics(jet, true);
  auto a2 = torch::exp(0.6 * t);
  EXPECT_LT((h - 0.3).abs().max().item<double>(), 1e-13) << h;
  EXPECT_LT(s.abs().max().item<double>(), 1e-13) << s;
  EXPECT_LT((hn - eps / a2).abs().max().item<double>(), 1e-13) << hn;
  EXPECT_LT((sn - eps * eps / (4 * a2.square())).abs().max().item<double>(), 1e-13) << sn;
}



// Flat LCDM luminosity distance in Mpc by composite Simpson (2^14 intervals).
double LcdmDistance(double z, double h0, double om) {
  const int n = 1 << 14;
  auto f = [&](double x) { return 1.0 / std::sqrt(om * std::pow(1 + x, 3) + 1 - om); };
  double sum = f(0) + f(z), h = z / n;
  for (int i = 1; i < n; ++i) sum += f(i * h) * (i % 2 ? 4 : 2);
  return (1 + z) * kC / h0 * sum * h / 3;
}

class ReportTest : public testing::TempDirTest {};

TEST_F(ReportTest, FittedLcdmTablesMatchTheClosedFormsWithTheFittedParameters) {
  // A few steps of the LCDM baseline on the shipped mock catalogue move h0 and
  // Omega_m off their initial values; the report must use the fitted ones
  // (model.pt carries them). Along the world line H = H0 sqrt(Om a^-3 + 1 - Om)
  // with a^2 = g_11 (1e-10 relative); the Hubble table's mu equals the
  // closed-form d_L by quadrature (1e-5 mag, the rays' tolerance is 1e-8).
  const fs::path src = fs::path(LUMPY_TEST_SOURCE_DIR) / "..";
  auto run = testing::RunLumpy(
      "run '" + (src / "experiments/baselines/lcdm.toml").string() + "' --steps 12 --out run " +
          "--set loss.sn.data='" + (src / "data/mock_pantheon.dat").string() + "' " +
          "--set optimizer.cycle_steps=12 --set telemetry.progress=false",
      dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto summary = nlohmann::json::parse(testing::ReadFile(dir_ / "run" / "summary.json"));
  // The values after the last update (what model.pt holds).
  const double h0 = summary["physical"]["model.h0"].get<double>();
  const double om = summary["physical"]["model.omega_m"].get<double>();
  ASSERT_GT(std::abs(h0 - 70.0), 0.1) << "the fit did not move h0";
  ASSERT_GT(std::abs(om - 0.3), 0.002) << "the fit did not move omega_m";

  auto report = testing::RunLumpy("report run --no-figures --grid 9", dir_);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.err.find("outside the metric's domain left out"), std::string::npos) << report.err;
  // Without figures it names only what it wrote (it once claimed report.md).
  EXPECT_EQ(report.err.find("report.md"), report.err.find("report.md, the figures")) << report.err;
  EXPECT_FALSE(fs::exists(dir_ / "run/report/report.md"));

  auto w = ReadTable(dir_ / "run/report/worldline.csv");
  ASSERT_GT(w["t"].size(), 100u);
  ASSERT_LT(w["t"].size(), 251u);  // before the big bang: left out
  const double h = h0 * 1000.0 / kC;
  for (size_t i = 0; i < w["t"].size(); ++i) {
    const double a3 = std::pow(w["g_11"][i], 1.5);
    const double want = h * std::sqrt(om / a3 + 1 - om);
    for (const char* c : {"H_x", "H_y", "H_z"}) {
      EXPECT_NEAR(w[c][i], want, 1e-10 * want) << c << " at t = " << w["t"][i];
    }
    EXPECT_NEAR(w["shear_sq"][i], 0.0, 1e-15);  // isotropic
  }
  auto plane = ReadTable(dir_ / "run/report/plane_xy.csv");
  EXPECT_EQ(plane["t"].size(), 81u);
  // R today = 3 H0^2 (4 OL + Om), everywhere on the plane.
  for (double r : plane["ricci_scalar"]) EXPECT_NEAR(r, 3 * h * h * (4 * (1 - om) + om), 1e-10);

  auto sn = ReadTable(dir_ / "run/report/hubble_sn.csv");
  ASSERT_EQ(sn["z"].size(), 200u);
  for (size_t i = 0; i < sn["z"].size(); ++i) {
    const double mu = 5 * std::log10(LcdmDistance(sn["z"][i], h0, om)) + 25;
    EXPECT_NEAR(sn["mu_model"][i], mu, 1e-5) << "z = " << sn["z"][i];
    EXPECT_NEAR(sn["residual"][i], sn["mu_model"][i] - sn["mu_obs"][i], 1e-12);
  }
  std::vector<std::string> rays;
  auto curve = ReadTable(dir_ / "run/report/hubble_sn_curve.csv", &rays, "ray");
  EXPECT_EQ(curve["z"].size(), 6u * 200u);  // physical mode: +-x, +-y, +-z
  for (size_t i = 0; i < curve["z"].size(); i += 97) {
    EXPECT_NEAR(curve["mu_model"][i], 5 * std::log10(LcdmDistance(curve["z"][i], h0, om)) + 25, 1e-5)
        << rays[i];
  }
}

TEST_F(ReportTest, FiguresAndCurriculumWeightsOfATrainedNetwork) {
  // The engine's test experiment (SIREN, a learned spatial curriculum, WEC
  // under an augmented Lagrangian, trainable Omega_m) for a few steps; the
  // report's world line at t = 1 is the observer summary.json reports
  // (computed by the trainer, 1e-12), the curriculum's weight is e^(-2W)/2 > 0
  // on the whole t-x grid, and every figure and report.md are written.
  const fs::path exp = fs::path(LUMPY_TEST_SOURCE_DIR) / "data" / "engine.toml";
  auto run = testing::RunLumpy("run '" + exp.string() + "' --steps 30 --out run --set telemetry.progress=false",
                               dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto report = testing::RunLumpy("report run --grid 11 --worldline 51", dir_);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  auto summary = nlohmann::json::parse(testing::ReadFile(dir_ / "run" / "summary.json"));
  auto w = ReadTable(dir_ / "run/report/worldline.csv");
  ASSERT_EQ(w["t"].size(), 51u);
  EXPECT_EQ(w["t"].back(), 1.0);
  for (const char* c : {"H_x", "H_y", "H_z", "shear_sq"}) {
    const double want = summary["observer"][c].get<double>();
    EXPECT_NEAR(w[c].back(), want, 1e-12 * std::max(1.0, std::abs(want))) << c;
  }
  auto cur = ReadTable(dir_ / "run/report/curriculum_bulk.csv");
  ASSERT_EQ(cur["weight"].size(), 121u);
  bool varies = false;
  for (double v : cur["weight"]) {
    EXPECT_TRUE(std::isfinite(v) && v > 0) << v;
    varies |= std::abs(v - cur["weight"][0]) > 1e-12;
  }
  EXPECT_TRUE(varies) << "a trained curriculum's weights should vary over the plane";
  EXPECT_FALSE(fs::exists(dir_ / "run/report/curriculum_cmb.csv"));  // uniform: nothing learned
  for (const char* f : {"losses.png", "losses.csv", "physical.png", "physical.csv", "worldline.png",
                        "planes_today.png", "planes_today_3d.png", "curriculum.png", "report.md"}) {
    EXPECT_TRUE(fs::exists(dir_ / "run/report" / f) && fs::file_size(dir_ / "run/report" / f) > 0) << f;
  }
  // Every column a handler logs is drawn and tabulated, whatever its name
  // (the augmented Lagrangian's ema and skipped were left out: only names
  // ending in lambda, mu, log_sigma or penalty were kept).
  const auto handler_columns = summary["telemetry_columns"]["handlers"]["wec"];
  ASSERT_TRUE(handler_columns.is_array()) << summary.dump();
  const std::string losses_csv = testing::ReadFile(dir_ / "run/report/losses.csv");
  const std::string losses_header = losses_csv.substr(0, losses_csv.find_first_of("\r\n"));
  for (const auto& c : handler_columns) {
    EXPECT_NE(("," + losses_header + ",").find("," + c.get<std::string>() + ","), std::string::npos)
        << c << " not in " << losses_header;
  }
  EXPECT_NE(losses_header.find("wec.ema"), std::string::npos) << losses_header;
  const std::string md = testing::ReadFile(dir_ / "run/report/report.md");
  EXPECT_NE(md.find("![planes_today.png](planes_today.png)"), std::string::npos);
  EXPECT_NE(md.find("Held-out checks"), std::string::npos);
  EXPECT_NE(md.find("min R found between"), std::string::npos);

  // From the single best step's model, with the part-1 notebook's
  // kinematics beside the correct ones; the correct column is the world
  // line's own H_mean.
  auto best = testing::RunLumpy("report run --grid 11 --worldline 51 --checkpoint best_step --notebook-kinematics", dir_);
  ASSERT_EQ(best.exit_code, 0) << best.err;
  EXPECT_NE(best.err.find("best_step.pt (best_step)"), std::string::npos) << best.err;
  auto nb = ReadTable(dir_ / "run/report/worldline_notebook.csv");
  auto wb = ReadTable(dir_ / "run/report/worldline.csv");
  ASSERT_EQ(nb["t"].size(), 51u);
  for (size_t i = 0; i < 51; ++i) {
    const double h_mean = (wb["H_x"][i] + wb["H_y"][i] + wb["H_z"][i]) / 3;
    EXPECT_NEAR(nb["H_mean"][i], h_mean, 1e-9 * std::max(1.0, std::abs(h_mean))) << i;
  }
  EXPECT_TRUE(fs::exists(dir_ / "run/report/worldline_notebook.png"));

  // A truncated last row of metrics.csv (a run killed mid-write) is dropped
  // with a warning, never drawn: losses.csv keeps the rows it had.
  const std::string losses = testing::ReadFile(dir_ / "run/report/losses.csv");
  { std::ofstream(dir_ / "run/metrics.csv", std::ios::app) << "30,0.12"; }
  auto truncated = testing::RunLumpy("report run --grid 11 --worldline 51", dir_);
  ASSERT_EQ(truncated.exit_code, 0) << truncated.err;
  EXPECT_NE(truncated.err.find("metrics.csv:32: dropped a row with 2 of its"), std::string::npos) << truncated.err;
  EXPECT_EQ(testing::ReadFile(dir_ / "run/report/losses.csv"), losses);
}

// `lumpy certify` on a checkpoint of a finished run: the same certificate
// the run wrote for its final state, now for the best step, in its own file.
TEST_F(ReportTest, CertifyACheckpointOfARun) {
  const fs::path exp = fs::path(LUMPY_TEST_SOURCE_DIR) / "data" / "engine.toml";
  ASSERT_EQ(testing::RunLumpy("run '" + exp.string() + "' --steps 20 --out run", dir_).exit_code, 0);
  auto final_cert = testing::RunLumpy("certify run --checkpoint final", dir_);
  ASSERT_EQ(final_cert.exit_code, 0) << final_cert.err;
  auto summary = nlohmann::json::parse(testing::ReadFile(dir_ / "run" / "summary.json"));
  auto mine = nlohmann::json::parse(testing::ReadFile(dir_ / "run" / "certificate_final.json"));
  EXPECT_EQ(mine["held_out"]["bulk"]["ricci_min"], summary["held_out"]["bulk"]["ricci_min"]);
  EXPECT_GT(mine["seconds"].get<double>(), 0);
  EXPECT_NE(final_cert.out.find("held-out bulk"), std::string::npos) << final_cert.out;
  auto best = testing::RunLumpy("certify run --checkpoint best_step --points 81", dir_);
  ASSERT_EQ(best.exit_code, 0) << best.err;
  auto b = nlohmann::json::parse(testing::ReadFile(dir_ / "run" / "certificate_best_step.json"));
  EXPECT_EQ(b["checkpoint"], "best_step");
  EXPECT_EQ(b["held_out"]["bulk"]["points"].get<int64_t>(), 81);
  EXPECT_LE(b["held_out"]["bulk"]["refined"]["ricci_min"].get<double>(),
            b["held_out"]["bulk"]["ricci_min"].get<double>());
  auto nowhere = testing::RunLumpy("certify nowhere", dir_);
  EXPECT_EQ(nowhere.exit_code, 2);
  EXPECT_NE(nowhere.err.find("nowhere: not a run folder"), std::string::npos) << nowhere.err;
}

TEST_F(ReportTest, RefusalsSayWhatIsMissing) {
  auto none = testing::RunLumpy("report nowhere", dir_);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("nowhere: not a run folder (it needs the experiment.toml and metrics.csv"),
            std::string::npos)
      << none.err;
  const fs::path exp = fs::path(LUMPY_TEST_SOURCE_DIR) / "data" / "engine.toml";
  ASSERT_EQ(testing::RunLumpy("run '" + exp.string() + "' --steps 2 --out run --set telemetry.progress=false "
                              "--set checkpoint.every=1000",
                              dir_)
                .exit_code,
            0);
  fs::remove(dir_ / "run/checkpoints/best.pt");
  auto best = testing::RunLumpy("report run --checkpoint best --no-figures", dir_);
  EXPECT_EQ(best.exit_code, 2);
  EXPECT_NE(best.err.find("best.pt: not written by this run"), std::string::npos) << best.err;
  auto grid = testing::RunLumpy("report run --grid 1", dir_);
  EXPECT_EQ(grid.exit_code, 2);
  EXPECT_NE(grid.err.find("--grid"), std::string::npos) << grid.err;
}

// Flat LCDM's chi^2 on the Hubble-flow selection at (h0, om), by Simpson's
// rule with 4000 intervals per supernova (independent of the command's
// cumulative trapezoid).
double LcdmChi2(const SupernovaCatalogue& cat, double h0, double om) {
  double chi2 = 0;
  for (int64_t i = 0; i < cat.size(); ++i) {
    const double z = cat.z[i].item<double>();
    const int n = 4000;
    auto f = [&](double x) { return 1 / std::sqrt(om * std::pow(1 + x, 3) + 1 - om); };
    double sum = f(0) + f(z);
    for (int k = 1; k < n; ++k) sum += (k % 2 ? 4 : 2) * f(z * k / n);
    const double dl = (1 + z) * 299792.458 / h0 * sum * z / (3 * n);
    const double r = (5 * std::log10(dl) + 25 - cat.mu[i].item<double>()) / cat.sigma[i].item<double>();
    chi2 += r * r;
  }
  return chi2;
}

// `lumpy sky`: its flat-LCDM best fit agrees with the independent numpy fit
// (scripts/lcdm_fit.py) and a FLRW metric frozen at h0 = 70, Om = 0.3 gives
// the closed form's chi^2 along physical rays and along the reference ray.
TEST_F(ReportTest, SkyAgainstLcdmMatchesAnIndependentFitAndTheClosedForm) {
  const std::string lcdm = std::string(LUMPY_TEST_SOURCE_DIR) + "/../experiments/baselines/lcdm.toml";
  auto run = testing::RunLumpy("run '" + lcdm + "' --steps 1 --set optimizer.lr=1e-300 --set optimizer.peak_lr=1e-300 --out l", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto sky = testing::RunLumpy("sky l", dir_);
  ASSERT_EQ(sky.exit_code, 0) << sky.err;
  auto out = nlohmann::json::parse(testing::ReadFile(dir_ / "l" / "sky_final.json"));
  ASSERT_EQ(out["rows"].size(), 3u);
  const auto& fit = out["rows"][0];

  // The independent fit.
  const std::string script = std::string(LUMPY_TEST_SOURCE_DIR) + "/../scripts/lcdm_fit.py";
  const std::string data = std::string(LUMPY_TEST_SOURCE_DIR) + "/../data/Pantheon+SH0ES.dat";
  FILE* pipe = popen(("/usr/bin/python3 '" + script + "' '" + data + "'").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) text += buf;
  ASSERT_EQ(pclose(pipe), 0) << text;
  auto value = [&](const std::string& key) {
    auto at = text.find(key);
    EXPECT_NE(at, std::string::npos) << text;
    return std::stod(text.substr(text.find('=', at) + 1));
  };
  EXPECT_NEAR(fit["chi2"].get<double>() / value("chi2"), 1.0, 1e-7);
  EXPECT_NEAR(fit["h0"].get<double>() / value("h0"), 1.0, 1e-7);
  EXPECT_NEAR(fit["omega_m"].get<double>(), value("omega_m"), 1e-6);
  EXPECT_EQ(fit["n"].get<int64_t>(), 1580);

  // The frozen FLRW metric along both kinds of ray.
  SupernovaOptions selection;
  selection.columns.z = "zHD";
  selection.z_min = 0.01;
  selection.drop_calibrators = true;
  auto cat = LoadSupernovae(data, selection);
  ASSERT_TRUE(cat.ok()) << cat.status();
  const double want = LcdmChi2(*cat, 70.0, 0.3);
  for (int row : {1, 2}) {
    const auto& r = out["rows"][row];
    EXPECT_EQ(r["reached"].get<int64_t>(), 1580) << r;
    EXPECT_NEAR(r["chi2"].get<double>() / want, 1.0, 1e-6) << r;
    EXPECT_NEAR(r["delta_chi2_vs_lcdm"].get<double>(), r["chi2"].get<double>() - fit["chi2"].get<double>(), 1e-9);
  }
  // Flat FLRW expands alike in every direction: H(n) today = H0 = 70 along
  // all 48 bins; the bin table holds every supernova once.
  EXPECT_NEAR(out["expansion_today"]["h_min"].get<double>(), 70.0, 1e-9);
  EXPECT_NEAR(out["expansion_today"]["h_max"].get<double>(), 70.0, 1e-9);
  std::vector<std::string> lines = absl::StrSplit(testing::ReadFile(dir_ / "l" / "sky_final_bins.csv"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 49u);
  int64_t total = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    total += std::stoll(f.at(3));
  }
  EXPECT_EQ(total, 1580);
}

// An experiment file instead of a run folder: the off-centre LTB void's sky
// (an analytic metric, nothing trained) into ./sky_ltb_void/: its expansion
// today differs by direction (the void's centre is 350 Mpc away along +x),
// and so do its distances (lumpy distances towards and away from the centre).
TEST_F(ReportTest, SkyAndDistancesOfAnExactLumpyUniverse) {
  const std::string ltb = std::string(LUMPY_TEST_SOURCE_DIR) + "/../experiments/baselines/ltb_void.toml";
  auto sky = testing::RunLumpy("sky '" + ltb + "' --bins 12 --no-figures", dir_);
  ASSERT_EQ(sky.exit_code, 0) << sky.err;
  auto out = nlohmann::json::parse(testing::ReadFile(dir_ / "sky_ltb_void" / "sky_analytic.json"));
  EXPECT_GT(out["expansion_today"]["anisotropy"].get<double>(), 0.05) << out["expansion_today"];
  EXPECT_EQ(out["rows"][1]["reached"].get<int64_t>(), 1580) << out["rows"][1];
  EXPECT_TRUE(fs::exists(dir_ / "sky_ltb_void" / "sky_analytic_bins.csv"));
  auto toward = testing::RunLumpy("distances '" + ltb + "' --z 0.1 --direction 0,0", dir_);
  auto away = testing::RunLumpy("distances '" + ltb + "' --z 0.1 --direction 180,0", dir_);
  ASSERT_EQ(toward.exit_code, 0) << toward.err;
  ASSERT_EQ(away.exit_code, 0) << away.err;
  auto d_l = [](const std::string& csv) {
    std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
    std::vector<std::string> f = absl::StrSplit(lines.at(1), ',');
    return std::stod(f.at(1));
  };
  EXPECT_GT(std::abs(d_l(toward.out) / d_l(away.out) - 1), 0.01) << toward.out << away.out;
}


}  // namespace
}  // namespace lumpy
