#include "cli/sky.h"

#include <cmath>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "data/lcdm_fit.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/supernovae.h"
#include "train/checkpoint.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// The model's chi^2 on the catalogue along its rays: every supernova the
// rays reached; with a covariance only if all were reached.
struct ModelChi2 {
  std::string mode;
  int64_t reached = 0;
  double chi2 = NAN;
  std::string stops;
};

ModelChi2 Evaluate(MetricModel& model, const SupernovaCatalogue& cat, bool physical, int64_t bins,
                   const RayTracerOptions& tracer) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  SkyDistances d;
  if (physical) {
    auto sky = SkyDirections(cat.ra, cat.dec);
    auto directions = bins > 0 ? DirectionBins(bins) : sky;
    auto ray_of = bins > 0 ? NearestBin(sky, directions) : torch::arange(cat.size(), torch::kLong);
    d = TraceSky(model, directions, ray_of, cat.z, f64, tracer);
  } else {
    d = TraceReference(model, cat.z, f64, tracer);
  }
  ModelChi2 out;
  out.mode = physical ? (bins > 0 ? absl::StrCat("physical, ", bins, " bins") : "physical, one ray each")
                      : "reference ray";
  out.stops = d.stop.Summary();
  auto reached = d.reached.to(torch::kBool);
  out.reached = reached.sum().item<int64_t>();
  auto mu = 5.0 * torch::log10(torch::where(reached, d.luminosity_distance, torch::ones_like(cat.z))) + 25.0;
  auto r = torch::where(reached, mu - cat.mu, torch::zeros_like(mu));
  if (out.reached == 0) {
    // nothing to compare
  } else if (!cat.covariance_cholesky.defined()) {
    out.chi2 = (r / cat.sigma).square().sum().item<double>();
  } else if (out.reached == cat.size()) {
    out.chi2 = cat.Chi2(r).item<double>();
  }
  return out;
}

}  // namespace

int RunSky(const SkyOptions& o) {
  const fs::path run_dir(o.run_dir);
  LoadedRun run;
  if (int rc = LoadRun(run_dir, o.checkpoint, &run)) return rc;
  MetricModel& model = *run.c.model;
  torch::NoGradGuard no_grad;
  model.to(torch::kCPU, torch::kFloat64);
  auto path = ResolveDataFile(o.data);
  if (!path.ok()) return ExitStatus(absl::InvalidArgumentError(path.status().message()));
  SupernovaOptions selection;
  selection.z_column = "zHD";
  selection.z_min = 0.01;
  selection.drop_calibrators = true;
  std::vector<std::pair<std::string, SupernovaOptions>> error_models = {{"diagonal", selection}};
  if (!o.covariance.empty()) {
    selection.covariance = o.covariance;
    error_models.push_back({"covariance", selection});
  }
  RayTracerOptions tracer;
  tracer.rtol = o.rtol;
  tracer.atol = o.atol;
  nlohmann::json out = {{"checkpoint", run.which},
                        {"model_file", fs::relative(run.model_file, run_dir).string()},
                        {"data", path->string()},
                        {"selection", "zHD > 0.01, calibrators dropped, MU_SH0ES"},
                        {"rows", nlohmann::json::array()}};
  std::cout << absl::StrFormat("%s (%s): the trained metric on the real sky against flat LCDM\n\n",
                               run_dir.string(), run.which);
  std::cout << "| errors | model | rays | N | reached | chi^2 | chi^2/N | Delta chi^2 vs LCDM | rays stopped |\n"
               "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& [errors, sel] : error_models) {
    auto cat = LoadSupernovae(*path, sel);
    if (!cat.ok()) return ExitStatus(absl::InvalidArgumentError(cat.status().message()));
    if (!cat->ra.defined()) {
      return ExitStatus(absl::InvalidArgumentError(absl::StrCat(cat->file, ": no RA and DEC columns: the real sky needs them")));
    }
    const LcdmFit lcdm = FitFlatLcdm(*cat);
    const int64_t n = cat->size();
    std::cout << absl::StrFormat("| %s | flat LCDM best fit (H0 %.4f, Om %.5f) | closed form | %d | %d | %.4f | %.5f | 0 | |\n",
                                 errors, lcdm.h0, lcdm.omega_m, n, n, lcdm.chi2, lcdm.chi2 / n);
    out["rows"].push_back({{"errors", errors}, {"model", "flat LCDM best fit"}, {"h0", lcdm.h0},
                           {"omega_m", lcdm.omega_m}, {"n", n}, {"reached", n}, {"chi2", lcdm.chi2}});
    for (bool physical : {true, false}) {
      const ModelChi2 m = Evaluate(model, *cat, physical, o.bins, tracer);
      const bool all = m.reached == n;
      std::cout << absl::StrFormat("| %s | %s (%s) | %s | %d | %d | %s | %s | %s | %s |\n", errors,
                                   run.exp->name, run.which, m.mode, n, m.reached,
                                   std::isnan(m.chi2) ? "n/a" : absl::StrFormat("%.4f", m.chi2),
                                   std::isnan(m.chi2) ? "n/a" : absl::StrFormat("%.5f", m.chi2 / m.reached),
                                   all ? absl::StrFormat("%+.4f", m.chi2 - lcdm.chi2) : "n/a (not all reached)",
                                   m.stops);
      out["rows"].push_back({{"errors", errors}, {"model", run.exp->name}, {"rays", m.mode}, {"n", n},
                             {"reached", m.reached}, {"chi2", std::isnan(m.chi2) ? nlohmann::json() : nlohmann::json(m.chi2)},
                             {"delta_chi2_vs_lcdm", all && !std::isnan(m.chi2) ? nlohmann::json(m.chi2 - lcdm.chi2) : nlohmann::json()},
                             {"rays_stopped", m.stops}});
    }
  }
  const fs::path file = run_dir / absl::StrCat("sky_", run.which, ".json");
  if (auto st = WriteAtomically(file, out.dump(2) + "\n"); !st.ok()) return ExitStatus(st);
  std::cout << "\nchi^2 over the supernovae the rays reached; written to " << file.string() << std::endl;
  return kExitOk;
}

}  // namespace lumpy
