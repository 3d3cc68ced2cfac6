#pragma once
// Supernova catalogues (a whitespace table with a header line naming its
// columns, as Pantheon+'s; docs/physics.md, "Light rays and observables"),
// an optional full covariance, BAO tables, and where data files are looked
// for.

#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lumpy/export.h"

namespace lumpy {

// A data file by name: an existing path as given, else the first match in the
// folders of LUMPY_DATA_PATH (':'-separated), then ./data, then the data/
// folder of the source checkout the SDK was built from (where the Pantheon+
// catalogue ships). The error lists every place looked in and how to get
// the file.
LUMPY_API absl::StatusOr<std::filesystem::path> ResolveDataFile(const std::string& name);

// Which columns of the table hold what. ra and dec may be missing from a
// file (then the catalogue has no sky positions); calibrator is read only
// with drop_calibrators.
struct SupernovaColumns {
  std::string name, z, mu, sigma, calibrator, ra, dec;
};

// Pantheon+'s: CID, zCMB, MU_SH0ES, MU_SH0ES_ERR_DIAG, IS_CALIBRATOR, RA,
// DEC (its other redshifts: zHD, zHEL).
LUMPY_API SupernovaColumns PantheonPlusColumns();

struct SupernovaOptions {
  SupernovaColumns columns = PantheonPlusColumns();
  double z_min = 0.0;  // keeps z_min < z <= z_max
  double z_max = std::numeric_limits<double>::infinity();
  bool drop_calibrators = false;  // rows whose calibrator column is not 0
  std::string covariance;         // optional: N, then N*N numbers (all rows of the file)
};

struct LUMPY_API SupernovaCatalogue {
  std::string file;
  std::vector<std::string> names;  // CID
  std::vector<int64_t> lines;      // line in the file of each kept row
  // float64 [N]. ra, dec in degrees; undefined if the file has no RA/DEC.
  torch::Tensor z, mu, sigma, ra, dec;
  // Lower Cholesky factor of the kept rows' covariance [N,N], or undefined.
  torch::Tensor covariance_cholesky;

  int64_t size() const { return z.defined() ? z.size(0) : 0; }
  // chi^2 of each residual r = mu_model - mu [.., N]: sum (r/sigma)^2, or
  // r^T C^-1 r with the covariance. Differentiable in r; r's dtype.
  torch::Tensor Chi2(const torch::Tensor& residual) const;
  // The rows `rows` (int64 [M], any order), with their covariance (the block
  // C[rows, rows] of the full one: the marginal covariance of those rows).
  SupernovaCatalogue Subset(const torch::Tensor& rows) const;
};

LUMPY_API absl::StatusOr<SupernovaCatalogue> LoadSupernovae(
    const std::filesystem::path& file, const SupernovaOptions& options);

// BAO distances (a comma-separated table with the columns z, dm_over_rd,
// dm_err, dh_over_rd, dh_err, corr; data/bao_dr12.csv is the SDSS DR12
// consensus): D_M/r_d and D_H/r_d at each redshift with a 2x2 covariance.
struct LUMPY_API BaoTable {
  std::string file;
  torch::Tensor z, dm, dm_err, dh, dh_err, corr;  // float64 [N]

  int64_t size() const { return z.defined() ? z.size(0) : 0; }
  // sum over redshifts of [dDM, dDH] C^-1 [dDM, dDH]^T for model values
  // D_M/r_d and D_H/r_d [N]; differentiable, the models' dtype.
  torch::Tensor Chi2(const torch::Tensor& dm_over_rd, const torch::Tensor& dh_over_rd) const;
};

// Errors name file, line and column: a missing column, a non-finite value, a
// non-positive redshift or error, a correlation outside (-1, 1).
LUMPY_API absl::StatusOr<BaoTable> LoadBao(const std::filesystem::path& file);

}  // namespace lumpy
