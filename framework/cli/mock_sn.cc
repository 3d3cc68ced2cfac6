#include "cli/mock_sn.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "core/atomic_file.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/supernovae.h"

namespace lumpy {

namespace {

// Text for one line of a file's comment: a line break or another control
// character is written as its C escape (\n, \x1b), so what a user typed
// can never start a line of its own.
std::string OneLine(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// The catalogue's text: its provenance ('#' lines are comments to the
// reader), the Pantheon+ header, one row per supernova.
std::string Catalogue(const MockSnOptions& o, const torch::Tensor& z, const torch::Tensor& mu,
                      const torch::Tensor& ra, const torch::Tensor& dec) {
  const bool noise = !o.no_noise;
  std::ostringstream f;
  f << "# lumpy mock-sn " << OneLine(o.experiment)
    << (o.checkpoint.empty() ? "" : " --checkpoint " + OneLine(o.checkpoint))
    << absl::StrFormat(" --n %d --seed %d --sigma %g%s --z-min %g --z-max %g", o.n, o.seed, o.sigma,
                       noise ? "" : " --no-noise", o.zmin, o.zmax);
  for (const auto& s : o.sets) f << " --set " << OneLine(s);
  f << "\n# mu from the reference ray of the experiment's metric\n";
  f << "CID zHD zCMB zHEL MU_SH0ES MU_SH0ES_ERR_DIAG IS_CALIBRATOR RA DEC\n";
  for (int64_t i = 0; i < o.n; ++i) {
    const double zi = z[i].item<double>();
    f << absl::StrFormat("mock%05d %.17g %.17g %.17g %.17g %.17g 0 %.17g %.17g\n", i, zi, zi, zi,
                         mu[i].item<double>(), o.sigma, ra[i].item<double>(), dec[i].item<double>());
  }
  return f.str();
}

}  // namespace

int RunMockSn(const MockSnOptions& o) {
  const bool noise = !o.no_noise;
  const double z_min = o.zmin, z_max = o.zmax;
  if (!(z_min > 0 && z_min < z_max && std::isfinite(z_max))) {
    std::cerr << "--z-min/--z-max: need 0 < z-min < z-max, got " << z_min << ", " << z_max << std::endl;
    return kExitConfig;
  }
  if (std::filesystem::exists(o.out)) {
    std::cerr << o.out << ": exists; mock-sn never overwrites a file" << std::endl;
    return kExitConfig;
  }
  LoadedExperiment loaded;
  if (int rc = ExitStatus(LoadModel(o.experiment, o.sets, o.checkpoint, &loaded))) return rc;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(o.seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto u = torch::rand({o.n}, gen, f64);
  auto z = std::get<0>(torch::sort(z_min * torch::pow(z_max / z_min, u)));
  auto ra = 360.0 * torch::rand({o.n}, gen, f64);
  auto dec = torch::rad2deg(torch::asin(2.0 * torch::rand({o.n}, gen, f64) - 1.0));
  auto eps = noise ? o.sigma * torch::randn({o.n}, gen, f64) : torch::zeros({o.n}, f64);
  RayTracerOptions tracer;
  tracer.observer = loaded.c.observer;
  auto traced = TraceReference(*loaded.c.model, z.to(loaded.options), loaded.options, tracer);
  if (!traced.reached.all().item<bool>()) {
    std::cerr << "the reference ray stopped (" << traced.stop.Summary() << ") at z = "
              << traced.z_max.item<double>() << ", below --z-max " << z_max << std::endl;
    return kExitRuntime;
  }
  auto mu = 5.0 * torch::log10(traced.luminosity_distance.to(torch::kFloat64).cpu()) + 25.0 + eps;
  if (int rc = ExitStatus(WriteAtomically(o.out, Catalogue(o, z, mu, ra, dec)))) return rc;
  // Read back as a user will before success is claimed.
  SupernovaOptions read_back;
  auto written = LoadSupernovae(o.out, read_back);
  if (!written.ok() || written->size() != o.n) {
    std::error_code ec;
    std::filesystem::remove(o.out, ec);
    std::cerr << o.out << ": the catalogue written cannot be read back ("
              << (written.ok() ? absl::StrCat(written->size(), " of ", o.n, " rows")
                               : std::string(written.status().message()))
              << "); removed" << std::endl;
    return kExitRuntime;
  }
  std::cerr << "wrote " << o.n << " mock supernovae (seed " << o.seed << ", sigma " << o.sigma
            << (noise ? "" : ", no noise") << ") to " << o.out << std::endl;
  return kExitOk;
}

}  // namespace lumpy
