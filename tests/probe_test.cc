// `lumpy probe` end to end: values against closed forms, bad input named by
// line and column, points outside the metric's domain, checkpoints, dtype.

#include <gtest/gtest.h>

#include <cmath>

#include "absl/strings/str_split.h"
#include "analytic_metrics.h"
#include "cli_runner.h"
#include "lumpy/supernovae.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;

const std::string kData = std::string(LUMPY_TEST_SOURCE_DIR) + "/data";
const std::string kFlrw = kData + "/flrw_probe.toml";
const std::string kTiny = kData + "/tiny.toml";

class ProbeTest : public testing::TempDirTest {
 protected:
  void WritePoints(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  // Rows of the output as numbers; the header is checked.
  std::vector<std::vector<double>> ReadOut(const std::string& name) {
    std::vector<std::vector<double>> rows;
    bool header = true;
    for (absl::string_view line : absl::StrSplit(ReadFile(dir_ / name), '\n', absl::SkipEmpty())) {
      if (header) {
        EXPECT_EQ(line, "t,x,y,z,g_00,g_01,g_02,g_03,g_11,g_12,g_13,g_22,g_23,g_33,ricci_scalar,"
                        "efe_residual,H_x,H_y,H_z,shear_sq");
        header = false;
        continue;
      }
      std::vector<double> row;
      for (absl::string_view f : absl::StrSplit(line, ',')) row.push_back(std::strtod(std::string(f).c_str(), nullptr));
      rows.push_back(row);
    }
    return rows;
  }
};

TEST_F(ProbeTest, FlatLcdmMatchesTheFriedmannEquations) {
  WritePoints("in.csv", "# any column order, extra columns ignored\nlabel,z,y,x,t\na,0,0,0,1\nb,0.3,-0.2,0.1,0.5\nc,1,1,1,-1.5\n");
  auto r = RunLumpy("probe '" + kFlrw + "' --points in.csv --out out.csv", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = ReadOut("out.csv");
  ASSERT_EQ(rows.size(), 3u);
  const double h0 = 70.0 / 299792.458 * 1000.0, om = 0.3, ol = 0.7;
  for (const auto& row : rows) {
    const double a3 = std::pow(row[8], 1.5);  // g_11 = a^2
    EXPECT_NEAR(row[14] / (3 * h0 * h0 * (4 * ol + om / a3)), 1.0, 1e-10);     // R
    EXPECT_NEAR(row[16] * row[16] / (h0 * h0 * (om / a3 + ol)), 1.0, 1e-10);  // H_x^2
    EXPECT_EQ(row[16], row[17]);
    EXPECT_NEAR(row[19], 0.0, 1e-12);  // no shear
    EXPECT_GT(row[15], 0.0);           // Lambda is not dust: a residual remains
  }
  EXPECT_EQ(rows[1][0], 0.5);
  EXPECT_EQ(rows[1][1], 0.1);  // x read from its column, full precision back
  EXPECT_NEAR(rows[0][16], h0, 1e-12);
}

struct BadInput {
  const char* name;
  const char* text;
  const char* message;
};

TEST_F(ProbeTest, BadPointsFilesNameTheLine) {
  const BadInput cases[] = {
      {"missing.csv", "t,x,z\n1,0,0\n",
       "missing.csv:1: the header needs columns t, x, y, z; missing: y (header: t,x,z)"},
      {"fields.csv", "t,x,y,z\n1,0,0,0\n1,0,0\n", "fields.csv:3: expected 4 fields, got 3"},
      {"text.csv", "t,x,y,z\n1,0,0,0\n\n1,zero,0,0\n",
       "text.csv:4:2: column x: not a number: \"zero\""},
      {"inf.csv", "t,x,y,z\n1,0,0,inf\n", "inf.csv:2:4: column z: not finite: inf"},
      {"nan.csv", "t,x,y,z\nnan,0,0,0\n", "nan.csv:2:1: column t: not finite: nan"},
      {"empty.csv", "t,x,y,z\n",
       "empty.csv: no points (expected a header t,x,y,z and one row per point)"},
      {"bigbang.csv", "t,x,y,z\n1,0,0,0\n-3.5,0,0,0\n-2,0,0,0\n",  // LCDM big bang: t = -3.12
       "bigbang.csv: 1 point(s) lie outside where the metric is defined (before a big bang, "
       "inside a horizon, ...): line(s) 3"},
  };
  for (const auto& c : cases) {
    WritePoints(c.name, c.text);
    auto r = RunLumpy(std::string("probe '") + kFlrw + "' --points " + c.name + " --out o.csv", dir_);
    EXPECT_EQ(r.exit_code, 2) << c.name;
    EXPECT_EQ(r.err, std::string(c.message) + "\n") << c.name;
    EXPECT_FALSE(fs::exists(dir_ / "o.csv")) << c.name;
  }
  auto missing = RunLumpy("probe '" + kFlrw + "' --points nothing.csv --out o.csv", dir_);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "nothing.csv: no such points file\n");
}

TEST_F(ProbeTest, InsideTheHorizonIsReported) {
  WritePoints("bh.csv", "t,x,y,z\n0,2,0,0\n0,0.1,0,0\n0,0,0.2,0\n");
  auto r = RunLumpy("probe '" + kFlrw + "' --set model.plugin=schwarzschild --set model.mass=1 " +
                        "--set loss.efe.matter=vacuum --points bh.csv --out o.csv",
                    dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bh.csv: 2 point(s) lie outside where the metric is defined (before a big "
                   "bang, inside a horizon, ...): line(s) 3, 4\n");
}

TEST_F(ProbeTest, CheckpointsAndDtype) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --out run", dir_).exit_code, 0);
  WritePoints("in.csv", "t,x,y,z\n0.5,0.1,0.2,0.3\n-3,0.5,-0.5,0\n");
  ASSERT_EQ(RunLumpy("probe '" + kTiny + "' --points in.csv --out fresh.csv", dir_).exit_code, 0);
  auto trained = RunLumpy("probe run/experiment.toml --checkpoint run --points in.csv --out trained.csv", dir_);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  auto again = RunLumpy("probe '" + kTiny + "' --checkpoint run/model.pt --points in.csv --out again.csv", dir_);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  // Same seed, same initial network: only the checkpoint makes the difference.
  EXPECT_NE(ReadOut("fresh.csv"), ReadOut("trained.csv"));
  EXPECT_EQ(ReadOut("trained.csv"), ReadOut("again.csv"));
  // float32: every number is a float32 value.
  ASSERT_EQ(RunLumpy("probe '" + kTiny + "' --checkpoint run --set runtime.dtype=float32 " +
                         "--points in.csv --out f32.csv",
                     dir_).exit_code,
            0);
  for (const auto& row : ReadOut("f32.csv")) {
    for (double v : row) EXPECT_EQ(static_cast<double>(static_cast<float>(v)), v);
  }
  auto wrong = RunLumpy("probe '" + kTiny + "' --set model.hidden=9 --checkpoint run --points in.csv --out w.csv", dir_);
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("run/model.pt: does not fit this experiment's model (siren): "),
            std::string::npos) << wrong.err;
  // A checkpoint of another kind of metric is refused for probe and
  // distances alike (a FLRW experiment once ignored a SIREN's checkpoint).
  for (const std::string& file : {"run", "run/checkpoints/latest.pt", "run/checkpoints/best.pt"}) {
    auto other = RunLumpy("probe '" + kFlrw + "' --checkpoint " + file + " --points in.csv --out o.csv", dir_);
    EXPECT_EQ(other.exit_code, 2) << file;
    EXPECT_NE(other.err.find(": a checkpoint of a siren metric; this experiment's model is flrw"), std::string::npos)
        << other.err;
  }
  auto other = RunLumpy("distances '" + kFlrw + "' --checkpoint run --z 0.5", dir_);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("this experiment's model is flrw"), std::string::npos) << other.err;
  EXPECT_FALSE(fs::exists(dir_ / "o.csv"));
  auto none = RunLumpy("probe '" + kTiny + "' --checkpoint nowhere --points in.csv --out w.csv", dir_);
  EXPECT_EQ(none.err, "nowhere: no such checkpoint (give a run folder, its model.pt, or "
                      "checkpoints/latest.pt or best.pt)\n");
}

// `lumpy distances`: the reference ray and a physical-mode ray along a sky
// direction of flat LCDM against the closed forms (Simpson's rule on 1/E(z),
// 1e-6 relative): d_L, d_A = d_L/(1+z)^2, D_H = c/H(z), mu; bad redshifts,
// bad directions and a direction for the reference ray are usage errors.
TEST_F(ProbeTest, DistancesOfFlatLcdmMatchTheClosedForm) {
  for (const std::string args : {"", " --direction 150.1,2.2", " --mode physical"}) {
    auto r = RunLumpy("distances '" + kFlrw + "' --z 0.05,1,2.3" + args, dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0], "z,d_L_mpc,d_A_mpc,d_H_mpc,mu");
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<double> v;
      for (absl::string_view f : absl::StrSplit(lines[i], ',')) v.push_back(std::strtod(std::string(f).c_str(), nullptr));
      const double z = v[0];
      const double want = testing::FlatLcdmLuminosityDistance(z, 70, 0.3);
      EXPECT_NEAR(v[1] / want, 1.0, 1e-6) << args << ": " << lines[i];
      EXPECT_NEAR(v[2] * (1 + z) * (1 + z) / v[1], 1.0, 1e-12);
      EXPECT_NEAR(v[3] / (299792.458 / 70 / std::sqrt(0.3 * std::pow(1 + z, 3) + 0.7)), 1.0, 1e-6);
      EXPECT_NEAR(v[4], 5 * std::log10(v[1]) + 25, 1e-12);
    }
  }
  auto bad = RunLumpy("distances '" + kFlrw + "' --z 0.5,-1", dir_);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "--z: every redshift must be finite and > 0, got -1\n");
  auto ref = RunLumpy("distances '" + kFlrw + "' --z 0.5 --direction 10,20 --mode reference", dir_);
  EXPECT_EQ(ref.exit_code, 2);
  EXPECT_NE(ref.err.find("sky directions need --mode physical"), std::string::npos) << ref.err;
  auto dec = RunLumpy("distances '" + kFlrw + "' --z 0.5 --direction 10,95", dir_);
  EXPECT_EQ(dec.exit_code, 2);
  EXPECT_NE(dec.err.find("expected RA,DEC in degrees with |DEC| <= 90"), std::string::npos) << dec.err;
}

// `lumpy mock-sn`: a catalogue the supernova reader accepts; without noise
// its distance moduli are the metric's exactly; the same seed repeats it.
TEST_F(ProbeTest, MockSupernovaeFromTheMetric) {
  auto r = RunLumpy("mock-sn '" + kFlrw + "' --out mock.dat --n 40 --seed 7 --no-noise", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cat = LoadSupernovae(dir_ / "mock.dat", {});
  ASSERT_TRUE(cat.ok()) << cat.status();
  ASSERT_EQ(cat->size(), 40);
  EXPECT_GE(cat->z.min().item<double>(), 0.01);
  EXPECT_LE(cat->z.max().item<double>(), 2.3);
  EXPECT_TRUE(cat->ra.defined());
  for (int64_t i = 0; i < cat->size(); i += 13) {
    const double z = cat->z[i].item<double>();
    const double dl = testing::FlatLcdmLuminosityDistance(z, 70, 0.3);
    EXPECT_NEAR(cat->mu[i].item<double>(), 5 * std::log10(dl) + 25, 1e-5);
  }
  // A NaN or infinite error or redshift bound is refused (NaN once passed
  // CLI11's PositiveNumber and wrote a catalogue of NaNs).
  for (const std::string& bad : {"--sigma nan", "--sigma inf", "--sigma 0", "--z-max nan", "--z-min -1"}) {
    auto r = RunLumpy("mock-sn '" + kFlrw + "' --out bad.dat " + bad, dir_);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("must be a finite number"), std::string::npos) << bad << ": " << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "bad.dat")) << bad;
  }
  auto again = RunLumpy("mock-sn '" + kFlrw + "' --out mock.dat --n 40", dir_);
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_EQ(again.err, "mock.dat: exists; mock-sn never overwrites a file\n");
  ASSERT_EQ(RunLumpy("mock-sn '" + kFlrw + "' --out a.dat --n 30 --seed 3", dir_).exit_code, 0);
  ASSERT_EQ(RunLumpy("mock-sn '" + kFlrw + "' --out b.dat --n 30 --seed 3", dir_).exit_code, 0);
  EXPECT_EQ(ReadFile(dir_ / "a.dat"), ReadFile(dir_ / "b.dat"));
}

}  // namespace
}  // namespace lumpy
