#include "lumpy/supernovae.h"

#include "core/input_file.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/table.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

absl::StatusOr<fs::path> ResolveDataFile(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("no data file named");
  std::vector<std::string> looked;
  const fs::path given(name);
  if (fs::exists(given)) return given;
  looked.push_back(given.string());
  if (given.is_relative()) {
    std::vector<fs::path> folders;
    if (const char* env = std::getenv("LUMPY_DATA_PATH")) {
      for (absl::string_view dir : absl::StrSplit(env, ':', absl::SkipEmpty())) {
        folders.emplace_back(std::string(dir));
      }
    }
    folders.emplace_back("data");
    // The project's own data (the BAO table, the quickstart's mock catalogue).
    folders.emplace_back(fs::path(LUMPY_SOURCE_DIR) / "data");
    for (const auto& dir : folders) {
      const fs::path candidate = dir / given;
      if (fs::exists(candidate)) return candidate;
      looked.push_back(candidate.string());
    }
  }
  return absl::NotFoundError(absl::StrCat(
      name, ": no such data file; looked in: ", absl::StrJoin(looked, ", "),
      ". Set LUMPY_DATA_PATH to the folder that holds it; the public Pantheon+ release is "
      "fetched by scripts/download_pantheon.sh"));
}

namespace {

// Reads the covariance file: N, then N*N numbers.
absl::StatusOr<torch::Tensor> ReadCovariance(const fs::path& file, int64_t rows_in_catalogue) {
  LUMPY_RETURN_IF_ERROR(CheckInputFile(file, InputKind::kCovariance, "covariance file"));
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": cannot read the covariance file"));
  std::string token;
  std::vector<double> values;
  int64_t n = -1;
  while (in >> token) {
    char* end = nullptr;
    const double v = std::strtod(token.c_str(), &end);
    if (end != token.c_str() + token.size() || !std::isfinite(v) || token.find_first_of("xX") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(file.string(), ": number ", values.size() + 1 + (n >= 0),
                                                     " is not a finite number: \"", token, "\""));
    }
    if (n < 0) {
      if (v != std::floor(v) || v < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            file.string(), ": the first number must be the matrix size N, got ", token));
      }
      n = static_cast<int64_t>(v);
      if (n != rows_in_catalogue) {
        return absl::InvalidArgumentError(absl::StrCat(
            file.string(), ": a ", n, "x", n, " covariance does not fit the catalogue's ",
            rows_in_catalogue, " rows (it covers every row of the file, before filters)"));
      }
      values.reserve(n * n);
      continue;
    }
    values.push_back(v);
  }
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": empty covariance file"));
  if (static_cast<int64_t>(values.size()) != n * n) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": expected N*N = ", n * n,
                                                   " numbers after N = ", n, ", found ",
                                                   values.size()));
  }
  return torch::tensor(values, torch::kFloat64).view({n, n});
}

// The Cholesky factor of the covariance file's block for the `kept` rows of a
// catalogue of `rows` rows (symmetric and positive definite, or refused
// naming the first failing supernova).
absl::StatusOr<torch::Tensor> SelectedCholesky(const std::string& covariance, int64_t rows,
                                               const std::vector<int64_t>& kept,
                                               const SupernovaCatalogue& cat) {
  LUMPY_ASSIGN_OR_RETURN(auto path, ResolveDataFile(covariance));
  LUMPY_ASSIGN_OR_RETURN(auto full, ReadCovariance(path, rows));
  auto idx = torch::tensor(kept, torch::kLong);
  auto c = full.index_select(0, idx).index_select(1, idx);
  const double asym = (c - c.t()).abs().max().item<double>();
  if (asym > 1e-10 * c.abs().max().item<double>()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": the covariance is not symmetric (largest |C - C^T| = ",
                                                   asym, ")"));
  }
  auto [l, info] = torch::linalg_cholesky_ex(c);
  const int64_t bad = info.item<int64_t>();
  if (bad > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), ": the covariance of the ", kept.size(),
        " selected supernovae is not positive definite (its leading minor of order ", bad,
        " is not positive; first failing supernova: ", cat.names[bad - 1], ", line ",
        cat.lines[bad - 1], " of ", cat.file, ")"));
  }
  return l;
}

// One catalogue row's numbers, checked; nullopt if the selection drops it.
struct CatalogueRow {
  double z = 0, mu = 0, sigma = 0, ra = 0, dec = 0;
};
absl::StatusOr<std::optional<CatalogueRow>> ReadRow(const TextTable& table, size_t row,
                                                     const std::vector<int>& cols, int ra_col,
                                                     int dec_col, const SupernovaOptions& options) {
  double v[4];
  for (int k = 1; k < 4; ++k) {
    LUMPY_ASSIGN_OR_RETURN(auto x, table.Number(row, cols[k]));
    v[k] = x;
  }
  if (v[1] <= 0) {  // dropped silently by the z_min filter before
    return absl::InvalidArgumentError(absl::StrCat(table.Where(row, cols[1]),
                                                   ": a redshift must be positive, got ",
                                                   table.Field(row, cols[1])));
  }
  if (v[3] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(table.Where(row, cols[3]),
                                                   ": an error must be positive, got ",
                                                   table.Field(row, cols[3])));
  }
  CatalogueRow out{v[1], v[2], v[3], 0, 0};
  if (ra_col >= 0 && dec_col >= 0) {
    LUMPY_ASSIGN_OR_RETURN(auto a, table.Number(row, ra_col));
    LUMPY_ASSIGN_OR_RETURN(auto b, table.Number(row, dec_col));
    if (b < -90 || b > 90) {
      return absl::InvalidArgumentError(absl::StrCat(table.Where(row, dec_col),
                                                     ": a declination must lie in [-90, 90], got ",
                                                     table.Field(row, dec_col)));
    }
    out.ra = a;
    out.dec = b;
  }
  bool keep = v[1] > options.z_min && v[1] <= options.z_max;
  if (options.drop_calibrators) {
    LUMPY_ASSIGN_OR_RETURN(auto c, table.Number(row, cols[4]));
    if (c != 0) keep = false;
  }
  if (!keep) return std::optional<CatalogueRow>();
  return std::optional<CatalogueRow>(out);
}

}  // namespace

SupernovaColumns PantheonPlusColumns() {
  return {"CID", "zCMB", "MU_SH0ES", "MU_SH0ES_ERR_DIAG", "IS_CALIBRATOR", "RA", "DEC"};
}

absl::StatusOr<SupernovaCatalogue> LoadSupernovae(const fs::path& file,
                                                  const SupernovaOptions& options) {
  LUMPY_ASSIGN_OR_RETURN(auto table, TextTable::Read(file, TextTable::Separator::kWhitespace, "supernova catalogue"));
  if (table.rows() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": no supernovae in the file"));
  }
  const SupernovaColumns& named = options.columns;
  std::vector<std::string> wanted = {named.name, named.z, named.mu, named.sigma};
  if (options.drop_calibrators) wanted.push_back(named.calibrator);
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (wanted[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.string(), ": SupernovaOptions::columns names no ",
          i < 4 ? "name, z, mu or sigma column" : "calibrator column (drop_calibrators is set)"));
    }
  }
  LUMPY_ASSIGN_OR_RETURN(auto cols, table.Columns(wanted));
  int ra_col = -1, dec_col = -1;
  for (size_t i = 0; i < table.header().size(); ++i) {
    if (!named.ra.empty() && table.header()[i] == named.ra) ra_col = static_cast<int>(i);
    if (!named.dec.empty() && table.header()[i] == named.dec) dec_col = static_cast<int>(i);
  }
  const bool sky = ra_col >= 0 && dec_col >= 0;

  SupernovaCatalogue cat;
  cat.file = file.string();
  std::vector<double> z, mu, sigma, ra, dec;
  std::vector<int64_t> kept;
  for (size_t row = 0; row < table.rows(); ++row) {
    LUMPY_ASSIGN_OR_RETURN(auto read, ReadRow(table, row, cols, ra_col, dec_col, options));
    if (!read) continue;
    kept.push_back(static_cast<int64_t>(row));
    cat.names.push_back(table.Field(row, cols[0]));
    cat.lines.push_back(table.line(row));
    z.push_back(read->z);
    mu.push_back(read->mu);
    sigma.push_back(read->sigma);
    ra.push_back(read->ra);
    dec.push_back(read->dec);
  }
  if (kept.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": no supernova has ", options.z_min,
                                                   " < ", named.z, " <= ", options.z_max,
                                                   options.drop_calibrators ? " outside the calibrators" : ""));
  }
  const auto f64 = torch::kFloat64;
  cat.z = torch::tensor(z, f64);
  cat.mu = torch::tensor(mu, f64);
  cat.sigma = torch::tensor(sigma, f64);
  if (sky) {
    cat.ra = torch::tensor(ra, f64);
    cat.dec = torch::tensor(dec, f64);
  }
  if (!options.covariance.empty()) {
    LUMPY_ASSIGN_OR_RETURN(cat.covariance_cholesky,
                           SelectedCholesky(options.covariance, static_cast<int64_t>(table.rows()), kept, cat));
  }
  return cat;
}

SupernovaCatalogue SupernovaCatalogue::Subset(const torch::Tensor& rows_in) const {
  auto rows = rows_in.to(torch::kLong).contiguous();
  SupernovaCatalogue out;
  out.file = file;
  for (int64_t i = 0; i < rows.size(0); ++i) {
    const int64_t r = rows.data_ptr<int64_t>()[i];
    out.names.push_back(names.at(r));
    out.lines.push_back(lines.at(r));
  }
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, rows) : t; };
  out.z = pick(z);
  out.mu = pick(mu);
  out.sigma = pick(sigma);
  out.ra = pick(ra);
  out.dec = pick(dec);
  if (covariance_cholesky.defined()) {
    auto l = covariance_cholesky.index_select(0, rows);
    out.covariance_cholesky = torch::linalg_cholesky(torch::mm(l, l.t()));
  }
  return out;
}

torch::Tensor SupernovaCatalogue::Chi2(const torch::Tensor& residual) const {
  if (!covariance_cholesky.defined()) {
    return (residual / sigma.to(residual.options())).square().sum(-1);
  }
  // r^T C^-1 r = |L^-1 r|^2 with C = L L^T.
  auto l = covariance_cholesky.to(residual.options());
  auto r = residual.unsqueeze(-1);
  auto w = torch::linalg_solve_triangular(l, r, /*upper=*/false);
  return w.square().sum({-2, -1});
}

}  // namespace lumpy

namespace lumpy {

absl::StatusOr<BaoTable> LoadBao(const fs::path& file) {
  LUMPY_ASSIGN_OR_RETURN(auto table, TextTable::Read(file, TextTable::Separator::kComma, "BAO table"));
  if (table.rows() == 0) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": no rows"));
  const std::vector<std::string> names = {"z", "dm_over_rd", "dm_err", "dh_over_rd", "dh_err", "corr"};
  LUMPY_ASSIGN_OR_RETURN(auto cols, table.Columns(names));
  std::vector<std::vector<double>> v(names.size());
  for (size_t row = 0; row < table.rows(); ++row) {
    for (size_t k = 0; k < names.size(); ++k) {
      const int col = cols[k];
      LUMPY_ASSIGN_OR_RETURN(auto x, table.Number(row, col));
      const bool positive = k < 5;  // all but the correlation
      if (positive && !(x > 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(table.Where(row, col), ": must be positive, got ", table.Field(row, col)));
      }
      if (k == 5 && !(std::abs(x) < 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            table.Where(row, col), ": a correlation must lie in (-1, 1), got ", table.Field(row, col)));
      }
      v[k].push_back(x);
    }
  }
  BaoTable out;
  out.file = file.string();
  torch::Tensor* fields[] = {&out.z, &out.dm, &out.dm_err, &out.dh, &out.dh_err, &out.corr};
  for (size_t k = 0; k < names.size(); ++k) *fields[k] = torch::tensor(v[k], torch::kFloat64);
  return out;
}

torch::Tensor BaoTable::Chi2(const torch::Tensor& dm_over_rd, const torch::Tensor& dh_over_rd) const {
  const auto o = dm_over_rd.options();
  auto a = (dm_over_rd - dm.to(o)) / dm_err.to(o);
  auto b = (dh_over_rd - dh.to(o)) / dh_err.to(o);
  auto r = corr.to(o);
  return ((a.square() + b.square() - 2.0 * r * a * b) / (1.0 - r.square())).sum();
}

}  // namespace lumpy
