#include "cli/sky.h"

#include <cmath>
#include <sstream>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/exit_status.h"
#include "cli/figures.h"
#include "cli/run_folder.h"
#include "core/atomic_file.h"
#include "data/held_out.h"
#include "data/lcdm_fit.h"
#include "lumpy/geometry.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/report.h"
#include "lumpy/supernovae.h"
#include "train/checkpoint.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

constexpr double kKmSPerMpcPerUnit = 299.792458;  // H in 1/(1000 Mpc) -> km/s/Mpc

// The model's chi^2 on the catalogue along its rays: every supernova the
// rays reached; with a covariance only if all were reached. mu: the model's
// distance modulus per supernova (NaN where not reached); bin: each one's
// direction bin (physical mode with bins), else undefined.
struct ModelChi2 {
  std::string mode;
  int64_t reached = 0;
  double chi2 = NAN;
  std::string stops;
  torch::Tensor mu, bin;
};

ModelChi2 Evaluate(MetricModel& model, const SupernovaCatalogue& cat, bool physical, int64_t bins,
                   const RayTracerOptions& tracer) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  SkyDistances d;
  ModelChi2 out;
  if (physical) {
    auto sky = SkyDirections(cat.ra, cat.dec);
    auto directions = bins > 0 ? DirectionBins(bins) : sky;
    auto ray_of = bins > 0 ? NearestBin(sky, directions) : torch::arange(cat.size(), torch::kLong);
    d = TraceSky(model, directions, ray_of, cat.z, f64, tracer);
    if (bins > 0) out.bin = ray_of;
  } else {
    d = TraceReference(model, cat.z, f64, tracer);
  }
  out.mode = physical ? (bins > 0 ? absl::StrCat("physical, ", bins, " bins") : "physical, one ray each")
                      : "reference ray";
  out.stops = d.stop.Summary();
  auto reached = d.reached.to(torch::kBool);
  out.reached = reached.sum().item<int64_t>();
  auto mu = 5.0 * torch::log10(torch::where(reached, d.luminosity_distance, torch::ones_like(cat.z))) + 25.0;
  out.mu = torch::where(reached, mu, torch::full_like(mu, NAN));
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

// The directional Hubble rate at the observer's event, H(n) = -K(e, e) for
// each unit vector e = n^i e_i of the observer's frame (Gram-Schmidt of
// d_x, d_y, d_z in the spatial metric; zero shift, as the geometry), in
// km/s/Mpc: [R] for directions [R,3].
torch::Tensor ExpansionToday(MetricModel& model, const Event& observer, const torch::Tensor& directions) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  Geometry geo(model.jet(EventPoint(observer, f64), 1));
  auto gamma = geo.spatial_metric()[0], k = geo.extrinsic_curvature()[0];
  std::vector<torch::Tensor> e;
  for (int i = 0; i < 3; ++i) {
    auto v = torch::zeros({3}, f64);
    v[i] = 1.0;
    for (const auto& ej : e) v = v - torch::dot(ej, torch::mv(gamma, v)) * ej;
    e.push_back(v / torch::sqrt(torch::dot(v, torch::mv(gamma, v))));
  }
  auto triad = torch::stack(e);                       // [3 frame, 3 coordinate]
  auto v = torch::mm(directions.to(f64), triad);      // [R,3] coordinate vectors of unit length
  auto kvv = (torch::mm(v, k) * v).sum(1);
  return -kvv * kKmSPerMpcPerUnit;
}

// Per direction bin: how many supernovae, how many reached, the mean
// residual of the model and of LCDM (mu - mu_obs), the mean of the model
// minus LCDM over the reached ones, each one's chi^2, and H(n) today; as a
// CSV table for the sky map.
nlohmann::json BinTable(const SupernovaCatalogue& cat, const ModelChi2& m, const torch::Tensor& lcdm_mu,
                        const torch::Tensor& bins, const torch::Tensor& hubble, const fs::path& csv) {
  const int64_t nb = bins.size(0);
  std::vector<double> n(nb), reached(nb), res_model(nb), res_lcdm(nb), diff(nb), chi_model(nb), chi_lcdm(nb);
  for (int64_t i = 0; i < cat.size(); ++i) {
    const int64_t b = m.bin[i].item<int64_t>();
    const double obs = cat.mu[i].item<double>(), s = cat.sigma[i].item<double>();
    const double model = m.mu[i].item<double>(), lcdm = lcdm_mu[i].item<double>();
    n[b] += 1;
    res_lcdm[b] += lcdm - obs;
    chi_lcdm[b] += (lcdm - obs) * (lcdm - obs) / (s * s);
    if (std::isnan(model)) continue;
    reached[b] += 1;
    res_model[b] += model - obs;
    diff[b] += model - lcdm;
    chi_model[b] += (model - obs) * (model - obs) / (s * s);
  }
  std::ostringstream out;
  out << "bin,ra,dec,n,reached,mean_residual_model,mean_residual_lcdm,mean_model_minus_lcdm,chi2_model,"
         "chi2_lcdm,hubble_today\n";
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t b = 0; b < nb; ++b) {
    const double x = bins[b][0].item<double>(), y = bins[b][1].item<double>(), z = bins[b][2].item<double>();
    const double ra = std::fmod(std::atan2(y, x) * 180.0 / M_PI + 360.0, 360.0), dec = std::asin(z) * 180.0 / M_PI;
    const double rm = reached[b] ? res_model[b] / reached[b] : NAN, rl = n[b] ? res_lcdm[b] / n[b] : NAN;
    const double dm = reached[b] ? diff[b] / reached[b] : NAN;
    out << absl::StrFormat("%d,%.6f,%.6f,%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", b, ra, dec,
                           static_cast<int64_t>(n[b]), static_cast<int64_t>(reached[b]), rm, rl, dm, chi_model[b],
                           chi_lcdm[b], hubble[b].item<double>());
  }
  if (auto st = WriteAtomically(csv, out.str()); !st.ok()) return {{"error", std::string(st.message())}};
  return {{"file", csv.filename().string()}, {"bins", nb}};
}

// Where sky writes: the run folder, or for an experiment file sky_<name>/.
struct Target {
  LoadedRun run;
  fs::path out_dir;
  std::string label;  // the checkpoint, or "analytic"
};

int LoadTarget(const SkyOptions& o, Target* t) {
  const fs::path arg(o.run_dir);
  if (fs::is_regular_file(arg)) {  // an experiment: its metric as it is (an analytic one)
    if (int rc = ExitStatus(LoadAndBuild(arg, {}, &t->run))) return rc;
    if (int rc = ExitStatus(LoadMetric({}, &t->run))) return rc;
    t->label = "analytic";
    t->out_dir = fs::path(absl::StrCat("sky_", t->run.exp->name));
    t->run.model_file = arg;
    std::error_code ec;
    fs::create_directories(t->out_dir, ec);
    return kExitOk;
  }
  if (int rc = LoadRun(arg, o.checkpoint, &t->run)) return rc;
  t->label = t->run.which;
  t->out_dir = arg;
  return kExitOk;
}

// Every dataset term of the experiment that holds supernovae out of its
// loss, judged on them (data/held_out.h), printed and returned.
nlohmann::json HeldOut(Target& t) {
  nlohmann::json out = nlohmann::json::object();
  for (auto& l : t.run.c.losses) {
    if (l.spec->kind != LossKind::kDataset) continue;
    HubbleDiagramSource* source = HubbleDiagramOf(*l.term);
    if (source == nullptr) continue;
    auto diagram =
        source->hubble_diagram(*t.run.c.model, torch::TensorOptions().dtype(torch::kFloat64), t.run.c.observer);
    if (!diagram.ok()) continue;
    auto j = JudgeOnHeldOut(*diagram);
    if (j.empty()) continue;
    out[l.spec->name] = j;
    std::cout << absl::StrFormat(
        "\nheld out of loss.%s's training (%d of %d supernovae), its own rays and selection, diagonal errors:\n"
        "| set | N | reached | chi^2/N (metric, reached) | chi^2/N (LCDM fitted on training, same ones) |\n"
        "| --- | --- | --- | --- | --- |\n",
        l.spec->name, j["held_out"]["n"].get<int64_t>(),
        j["held_out"]["n"].get<int64_t>() + j["training"]["n"].get<int64_t>());
    for (const char* set : {"training", "held_out"}) {
      const auto& s = j[set];
      const double reached = s["reached"].get<double>();
      std::cout << absl::StrFormat("| %s | %d | %d | %.4f | %.4f |\n", set, s["n"].get<int64_t>(),
                                   s["reached"].get<int64_t>(), s["chi2_per_reached"].get<double>(),
                                   j["lcdm"][set]["chi2_on_reached"].get<double>() / reached);
    }
    std::cout << absl::StrFormat("LCDM fitted on the training set: H0 %.3f, Om %.4f; held-out Delta chi^2 (metric "
                                 "- LCDM) %+.3f\n",
                                 j["lcdm"]["h0"].get<double>(), j["lcdm"]["omega_m"].get<double>(),
                                 j["delta_chi2_held_out"].get<double>());
  }
  return out;
}

// The error models sky compares under: diagonal errors, and with
// --covariance the covariance too; each with its selection.
std::vector<std::pair<std::string, SupernovaOptions>> ErrorModels(const SkyOptions& o) {
  SupernovaOptions selection;
  selection.columns.z = "zHD";
  selection.z_min = 0.01;
  selection.drop_calibrators = true;
  std::vector<std::pair<std::string, SupernovaOptions>> error_models = {{"diagonal", selection}};
  if (!o.covariance.empty()) {
    selection.covariance = o.covariance;
    error_models.push_back({"covariance", selection});
  }
  return error_models;
}

// The model's row under one error model (rays of one kind), printed and into out["rows"].
void AddModelRow(const std::string& errors, const Target& t, const ModelChi2& m, int64_t n, const LcdmFit& lcdm,
                 nlohmann::json& out) {
  const bool all = m.reached == n;
  std::cout << absl::StrFormat("| %s | %s (%s) | %s | %d | %d | %s | %s | %s | %s |\n", errors,
                               t.run.exp->name, t.label, m.mode, n, m.reached,
                               std::isnan(m.chi2) ? "n/a" : absl::StrFormat("%.4f", m.chi2),
                               std::isnan(m.chi2) ? "n/a" : absl::StrFormat("%.5f", m.chi2 / m.reached),
                               all ? absl::StrFormat("%+.4f", m.chi2 - lcdm.chi2) : "n/a (not all reached)",
                               m.stops);
  out["rows"].push_back({{"errors", errors}, {"model", t.run.exp->name}, {"rays", m.mode}, {"n", n},
                         {"reached", m.reached}, {"chi2", std::isnan(m.chi2) ? nlohmann::json() : nlohmann::json(m.chi2)},
                         {"delta_chi2_vs_lcdm", all && !std::isnan(m.chi2) ? nlohmann::json(m.chi2 - lcdm.chi2) : nlohmann::json()},
                         {"rays_stopped", m.stops}});
}

// The sky map's table of the direction bins (out["map"]) and the expansion
// today along the bins' directions (out["expansion_today"]).
void AddMap(const SkyOptions& o, const Target& t, const SupernovaCatalogue& cat, const ModelChi2& m,
            const LcdmFit& lcdm, nlohmann::json& out) {
  auto bins = DirectionBins(o.bins);
  auto hubble = ExpansionToday(*t.run.c.model, t.run.c.observer, bins);
  const fs::path csv = t.out_dir / absl::StrCat("sky_", t.label, "_bins.csv");
  out["map"] = BinTable(cat, m, FlatLcdmDistanceModulus(cat.z, lcdm.h0, lcdm.omega_m), bins, hubble, csv);
  const double hmin = hubble.min().item<double>(), hmax = hubble.max().item<double>();
  const double hmean = hubble.mean().item<double>();
  out["expansion_today"] = {{"h_min", hmin}, {"h_max", hmax}, {"h_mean", hmean},
                            {"anisotropy", (hmax - hmin) / std::abs(hmean)},
                            {"note", "H(n) = -K(e,e) at the observer along each bin's direction, km/s/Mpc"}};
}

// One error model's rows: flat LCDM's best fit, then the model along
// physical and reference rays (with the sky map under diagonal errors).
absl::Status AddRows(const SkyOptions& o, const Target& t, const fs::path& data, const std::string& errors,
                     const SupernovaOptions& sel, const RayTracerOptions& tracer, nlohmann::json& out) {
  auto cat = LoadSupernovae(data, sel);
  if (!cat.ok()) return absl::InvalidArgumentError(cat.status().message());
  if (!cat->ra.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(cat->file, ": no RA and DEC columns: the real sky needs them"));
  }
  const LcdmFit lcdm = FitFlatLcdm(*cat);
  const int64_t n = cat->size();
  std::cout << absl::StrFormat("| %s | flat LCDM best fit (H0 %.4f, Om %.5f) | closed form | %d | %d | %.4f | %.5f | 0 | |\n",
                               errors, lcdm.h0, lcdm.omega_m, n, n, lcdm.chi2, lcdm.chi2 / n);
  out["rows"].push_back({{"errors", errors}, {"model", "flat LCDM best fit"}, {"h0", lcdm.h0},
                         {"omega_m", lcdm.omega_m}, {"n", n}, {"reached", n}, {"chi2", lcdm.chi2}});
  for (bool physical : {true, false}) {
    const ModelChi2 m = Evaluate(*t.run.c.model, *cat, physical, o.bins, tracer);
    AddModelRow(errors, t, m, n, lcdm, out);
    if (physical && errors == "diagonal" && m.bin.defined()) AddMap(o, t, *cat, m, lcdm, out);
  }
  return absl::OkStatus();
}

// The expansion today along the bins, where the map has it.
void PrintExpansion(const SkyOptions& o, const nlohmann::json& out) {
  if (!out.contains("expansion_today")) return;
  const auto& e = out["expansion_today"];
  std::cout << absl::StrFormat("\nexpansion today along the %d bins' directions: H from %.3f to %.3f km/s/Mpc "
                               "(mean %.3f; (max - min)/mean %.3g)\n",
                               o.bins, e["h_min"].get<double>(), e["h_max"].get<double>(),
                               e["h_mean"].get<double>(), e["anisotropy"].get<double>());
}

// The sky map figure of the bins' table, where there is one and figures are wanted.
void DrawSkyMap(const SkyOptions& o, const Target& t, const nlohmann::json& out) {
  if (!out.contains("map") || !out["map"].contains("file") || o.no_figures) return;
  std::string why;
  const fs::path csv = t.out_dir / out["map"]["file"].get<std::string>();
  const fs::path png = t.out_dir / absl::StrCat("sky_", t.label, "_map.png");
  if (RunFigureScript("sky_map.py", {csv.string(), png.string(), t.run.exp->name}, &why)) {
    std::cout << "sky map: " << png.string() << std::endl;
  } else {
    std::cerr << "note: no sky map figure: " << why << std::endl;
  }
}

}  // namespace

int RunSky(const SkyOptions& o) {
  Target t;
  if (int rc = LoadTarget(o, &t)) return rc;
  torch::NoGradGuard no_grad;
  t.run.c.model->to(torch::kCPU, torch::kFloat64);
  auto path = ResolveDataFile(o.data);
  if (!path.ok()) return ExitStatus(absl::InvalidArgumentError(path.status().message()));
  RayTracerOptions tracer;
  tracer.rtol = o.rtol;
  tracer.atol = o.atol;
  tracer.observer = t.run.c.observer;
  nlohmann::json out = {{"checkpoint", t.label},
                        {"model_file", t.run.model_file.string()},
                        {"data", path->string()},
                        {"selection", "zHD > 0.01, calibrators dropped, MU_SH0ES"},
                        {"rows", nlohmann::json::array()}};
  std::cout << absl::StrFormat("%s (%s): the metric on the real sky against flat LCDM\n\n", o.run_dir, t.label);
  std::cout << "| errors | model | rays | N | reached | chi^2 | chi^2/N | Delta chi^2 vs LCDM | rays stopped |\n"
               "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& [errors, sel] : ErrorModels(o)) {
    if (auto st = AddRows(o, t, *path, errors, sel, tracer, out); !st.ok()) return ExitStatus(st);
  }
  PrintExpansion(o, out);
  auto held = HeldOut(t);
  if (!held.empty()) out["held_out"] = held;
  const fs::path file = t.out_dir / absl::StrCat("sky_", t.label, ".json");
  if (auto st = WriteAtomically(file, out.dump(2) + "\n"); !st.ok()) return ExitStatus(st);
  std::cout << "\nchi^2 over the supernovae the rays reached; written to " << file.string() << std::endl;
  DrawSkyMap(o, t, out);
  return kExitOk;
}

}  // namespace lumpy
