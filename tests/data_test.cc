// Supernova catalogues: the real Pantheon+ file (the repository's data/, or
// LUMPY_DATA_PATH if set), filters, the chi^2 with diagonal errors and a
// full covariance, and every kind of bad input with file, line and column.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "data/table.h"
#include "lumpy/supernovae.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;

SupernovaCatalogue Pantheon(SupernovaOptions options = {}) {
  auto path = ResolveDataFile("Pantheon+SH0ES.dat");
  if (!path.ok()) throw std::runtime_error(std::string(path.status().message()));
  auto cat = LoadSupernovae(*path, options);
  if (!cat.ok()) throw std::runtime_error(std::string(cat.status().message()));
  return *cat;
}

TEST(Pantheon, ReadsTheReferenceColumnsOfAllRows) {
  auto cat = Pantheon();
  ASSERT_EQ(cat.size(), 1701);  // docs/physics.md: every row has z > 0
  EXPECT_EQ(cat.names[0], "2011fe");
  EXPECT_EQ(cat.lines[0], 2);
  EXPECT_DOUBLE_EQ(cat.z[0].item<double>(), 0.00122);
  EXPECT_DOUBLE_EQ(cat.mu[0].item<double>(), 28.9987);
  EXPECT_DOUBLE_EQ(cat.sigma[0].item<double>(), 1.51645);
  EXPECT_DOUBLE_EQ(cat.ra[0].item<double>(), 210.774);
  EXPECT_DOUBLE_EQ(cat.dec[0].item<double>(), 54.2737);
  EXPECT_GT(cat.z.min().item<double>(), 0.0);
  EXPECT_LT(cat.z.max().item<double>(), 2.3);
}

TEST(Pantheon, FiltersAndRedshiftColumns) {
  SupernovaOptions o;
  o.drop_calibrators = true;
  EXPECT_EQ(Pantheon(o).size(), 1701 - 77);
  o = {};
  o.z_min = 0.01;
  auto cut = Pantheon(o);
  EXPECT_EQ(cut.size(), 1588);
  EXPECT_GT(cut.z.min().item<double>(), 0.01);
  o = {};
  o.columns.z = "zHEL";
  EXPECT_DOUBLE_EQ(Pantheon(o).z[0].item<double>(), 0.00082);
}

TEST(Pantheon, DiagonalChi2) {
  auto cat = Pantheon();
  auto r = torch::full({cat.size()}, 0.1, torch::kFloat64);
  const double want = (0.1 / cat.sigma).square().sum().item<double>();
  EXPECT_NEAR(cat.Chi2(r).item<double>() / want, 1.0, 1e-14);
}

class SupernovaFiles : public testing::TempDirTest {
 protected:
  fs::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  // A failed load's message, with the temporary folder left out of paths.
  std::string Message(const absl::Status& status) {
    EXPECT_FALSE(status.ok());
    std::string msg(status.message());
    const std::string prefix = (dir_ / "").string();
    for (size_t p; (p = msg.find(prefix)) != std::string::npos;) msg.replace(p, prefix.size(), "");
    return msg;
  }
  std::string Error(const std::string& text, SupernovaOptions options = {}) {
    return Message(LoadSupernovae(Write("sn.dat", text), options).status());
  }
  const std::string header_ = "CID zCMB MU_SH0ES MU_SH0ES_ERR_DIAG IS_CALIBRATOR RA DEC\n";
  const std::string rows_ =
      "a 0.1 38.0 0.2 0 10 20\n"
      "b 0.2 39.6 0.1 1 30 -40\n"
      "c 0.5 42.3 0.3 0 50 60\n";
};

TEST_F(SupernovaFiles, FullCovarianceChi2OfTheSelectedRows) {
  Write("sn.dat", header_ + rows_);
  Write("sn.cov", "3\n0.04\n0.01\n0.002\n0.01\n0.01\n0.003\n0.002\n0.003\n0.09\n");
  SupernovaOptions o;
  o.covariance = (dir_ / "sn.cov").string();
  auto all = LoadSupernovae(dir_ / "sn.dat", o);
  ASSERT_TRUE(all.ok()) << all.status();
  auto c = torch::tensor({0.04, 0.01, 0.002, 0.01, 0.01, 0.003, 0.002, 0.003, 0.09},
                         torch::kFloat64).view({3, 3});
  auto r = torch::tensor({0.3, -0.2, 0.5}, torch::kFloat64);
  const double want = torch::dot(r, torch::mv(torch::inverse(c), r)).item<double>();
  EXPECT_NEAR(all->Chi2(r).item<double>() / want, 1.0, 1e-12);
  // Dropping the calibrator keeps rows and columns 0 and 2.
  o.drop_calibrators = true;
  auto some = LoadSupernovae(dir_ / "sn.dat", o);
  ASSERT_TRUE(some.ok()) << some.status();
  ASSERT_EQ(some->size(), 2);
  auto idx = torch::tensor({0, 2}, torch::kLong);
  auto c2 = c.index_select(0, idx).index_select(1, idx);
  auto r2 = r.index_select(0, idx);
  EXPECT_NEAR(some->Chi2(r2).item<double>() /
                  torch::dot(r2, torch::mv(torch::inverse(c2), r2)).item<double>(),
              1.0, 1e-12);
}

// The columns are the caller's: a catalogue of another survey loads with
// its own names (here without sky positions); Pantheon+'s are only the
// default. A column left unnamed is an error, not a silent default.
TEST_F(SupernovaFiles, ColumnsAreTheCallersToName) {
  Write("other.dat", "id redshift modulus err\nx 0.2 39.6 0.1\ny 0.5 42.3 0.3\n");
  SupernovaOptions o;
  o.columns = SupernovaColumns{"id", "redshift", "modulus", "err", "", "", ""};
  auto cat = LoadSupernovae(dir_ / "other.dat", o);
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_EQ(cat->names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(cat->mu[1].item<double>(), 42.3);
  EXPECT_FALSE(cat->ra.defined());
  o.drop_calibrators = true;
  EXPECT_EQ(Message(LoadSupernovae(dir_ / "other.dat", o).status()),
            "other.dat: SupernovaOptions::columns names no calibrator column (drop_calibrators is set)");
  o.columns.mu.clear();
  EXPECT_EQ(Message(LoadSupernovae(dir_ / "other.dat", o).status()),
            "other.dat: SupernovaOptions::columns names no name, z, mu or sigma column");
  const SupernovaColumns pantheon = PantheonPlusColumns();
  EXPECT_EQ(SupernovaOptions().columns.z, pantheon.z);
  EXPECT_EQ(pantheon.name, "CID");
}

TEST_F(SupernovaFiles, BadCatalogueNamesFileLineAndColumn) {
  EXPECT_EQ(Error("CID zCMB MU_SH0ES\na 0.1 38\n"),
            "sn.dat:1: the header needs columns CID, zCMB, MU_SH0ES, MU_SH0ES_ERR_DIAG; missing: "
            "MU_SH0ES_ERR_DIAG (header: CID zCMB MU_SH0ES)");
  EXPECT_EQ(Error(header_ + "a 0.1 38.0 0.2 0 10\n"), "sn.dat:2: expected 7 fields, got 6");
  EXPECT_EQ(Error(header_ + rows_ + "d 0.3 40.1 -0.2 0 1 1\n"),
            "sn.dat:5:4: column MU_SH0ES_ERR_DIAG: an error must be positive, got -0.2");
  EXPECT_EQ(Error(header_ + "a 0.1 nan 0.2 0 10 20\n"),
            "sn.dat:2:3: column MU_SH0ES: not finite: nan");
  EXPECT_EQ(Error(header_ + "a 0.1x 38 0.2 0 10 20\n"),
            "sn.dat:2:2: column zCMB: not a number: \"0.1x\"");
  EXPECT_EQ(Error(header_ + "a 0.1 38 0.2 0 10 95\n"),
            "sn.dat:2:7: column DEC: a declination must lie in [-90, 90], got 95");
  EXPECT_EQ(Error(header_), "sn.dat: no supernovae in the file");
  SupernovaOptions far;
  far.z_min = 5;
  EXPECT_EQ(Error(header_ + rows_, far), "sn.dat: no supernova has 5 < zCMB <= inf");
}

// A byte-order mark (spreadsheets write one) is not part of the first
// column's name; a header naming a column twice, or a field with no name, is
// refused (the second column of a name was silently ignored before).
TEST_F(SupernovaFiles, ByteOrderMarkIsIgnoredAndDuplicateColumnsRefused) {
  auto with_bom = LoadSupernovae(Write("sn.dat", "\xEF\xBB\xBF" + header_ + rows_), {});
  ASSERT_TRUE(with_bom.ok()) << with_bom.status();
  EXPECT_EQ(with_bom->size(), 3);
  EXPECT_EQ(Error("CID zCMB MU_SH0ES MU_SH0ES_ERR_DIAG zCMB\na 0.1 38 0.2 0.3\n"),
            "sn.dat:1: the header names column zCMB twice (fields 2 and 5)");
  auto points = TextTable::Read(Write("p.csv", "t,x,,z\n0,0,0,0\n"), TextTable::Separator::kComma, "points file");
  EXPECT_EQ(Message(points.status()), "p.csv:1: field 3 of the header has no name");
}

TEST_F(SupernovaFiles, BadCovarianceSaysWhatWasExpected) {
  auto with = [&](const std::string& cov) {
    Write("sn.cov", cov);
    SupernovaOptions o;
    o.covariance = (dir_ / "sn.cov").string();
    return Error(header_ + rows_, o);
  };
  EXPECT_EQ(with("2\n1 0\n0 1\n"),
            "sn.cov: a 2x2 covariance does not fit the catalogue's 3 rows (it covers every row "
            "of the file, before filters)");
  EXPECT_EQ(with("3\n1 0 0\n0 1 0\n0 0\n"), "sn.cov: expected N*N = 9 numbers after N = 3, found 8");
  EXPECT_EQ(with("3\n1 0 0\n0 1 0\n0 0 x\n"), "sn.cov: number 10 is not a finite number: \"x\"");
  EXPECT_EQ(with("3\n1 0.5 0\n0 1 0\n0 0 1\n"),
            "sn.cov: the covariance is not symmetric (largest |C - C^T| = 0.5)");
  EXPECT_EQ(with("3\n1 0 0\n0 -1 0\n0 0 1\n"),
            "sn.cov: the covariance of the 3 selected supernovae is not positive definite (its "
            "leading minor of order 2 is not positive; first failing supernova: b, line 3 of "
            "sn.dat)");
}

// The BAO table shipped with the project, and bad ones rejected with file,
// line and column.
TEST_F(SupernovaFiles, BaoTable) {
  auto shipped = ResolveDataFile("bao_dr12.csv");
  ASSERT_TRUE(shipped.ok()) << shipped.status();
  auto dr12 = LoadBao(*shipped);
  ASSERT_TRUE(dr12.ok()) << dr12.status();
  EXPECT_EQ(dr12->size(), 3);
  EXPECT_DOUBLE_EQ(dr12->dh[1].item<double>(), 22.33);
  EXPECT_DOUBLE_EQ(dr12->corr[2].item<double>(), 0.53);
  // D_M/r_d, not the reference's D_M in 100 Mpc (see the file's header).
  EXPECT_NEAR(dr12->dm[0].item<double>(), 1512.0 / 147.78, 1e-3);
  // chi^2 of the data themselves is 0; one sigma in D_M alone is 1/(1-r^2).
  EXPECT_EQ(dr12->Chi2(dr12->dm, dr12->dh).item<double>(), 0.0);
  auto dm = dr12->dm.clone();
  dm[0] += dr12->dm_err[0];
  EXPECT_NEAR(dr12->Chi2(dm, dr12->dh).item<double>(), 1 / (1 - 0.43 * 0.43), 1e-12);
  auto error = [&](const std::string& text) { return Message(LoadBao(Write("bao.csv", text)).status()); };
  const std::string header = "z,dm_over_rd,dm_err,dh_over_rd,dh_err,corr\n";
  EXPECT_EQ(error(header + "0.38,15.12,0.22,25.00,0.76,1.2\n"),
            "bao.csv:2:6: column corr: a correlation must lie in (-1, 1), got 1.2");
  EXPECT_EQ(error(header + "0.38,15.12,-0.22,25.00,0.76,0.4\n"),
            "bao.csv:2:3: column dm_err: must be positive, got -0.22");
  EXPECT_EQ(error(header + "0.38,15.12,0.22,inf,0.76,0.4\n"),
            "bao.csv:2:4: column dh_over_rd: not finite: inf");
  EXPECT_NE(error("z,dm_over_rd\n0.3,1\n").find("missing: dm_err, dh_over_rd, dh_err, corr"),
            std::string::npos);
}

TEST_F(SupernovaFiles, MissingDataFileSaysWhereItLookedAndHowToGetIt) {
  const char* old = std::getenv("LUMPY_DATA_PATH");
  const std::string saved = old ? old : "";
  struct Restore {
    std::string value;
    bool had;
    ~Restore() { had ? setenv("LUMPY_DATA_PATH", value.c_str(), 1) : unsetenv("LUMPY_DATA_PATH"); }
  } restore{saved, old != nullptr};
  setenv("LUMPY_DATA_PATH", (dir_ / "a").c_str(), 1);
  auto r = ResolveDataFile("nothing.dat");
  const std::string message(r.status().message());
  EXPECT_EQ(message.rfind("nothing.dat: no such data file; looked in: nothing.dat, " +
                              (dir_ / "a").string() + "/nothing.dat, data/nothing.dat, ",
                          0),
            0u)
      << message;
  // Last, the project's own data folder; then how to get the file.
  EXPECT_NE(message.find("/data/nothing.dat. Set LUMPY_DATA_PATH to the folder that holds it; "
                         "the public Pantheon+ release is fetched by scripts/download_pantheon.sh"),
            std::string::npos)
      << message;
  Write("here.dat", "x");
  setenv("LUMPY_DATA_PATH", ("/nonexistent:" + dir_.string()).c_str(), 1);
  EXPECT_EQ(ResolveDataFile("here.dat").value(), dir_ / "here.dat");
}

}  // namespace
}  // namespace lumpy
