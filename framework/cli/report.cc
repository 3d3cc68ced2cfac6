#include "cli/report.h"
#include "cli/run_folder.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/exit_status.h"
#include "cli/figures.h"
#include "config/experiment.h"
#include "loader/plugin_loader.h"
#include "lumpy/geometry.h"
#include "lumpy/module_state.h"
#include "lumpy/report.h"
#include "cli/probe.h"
#include "train/certify.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// A header and rows, written atomically.
absl::Status WriteCsv(const fs::path& out, const std::string& header,
                      const std::vector<std::vector<std::string>>& rows) {
  std::string text = header + "\n";
  for (const auto& r : rows) absl::StrAppend(&text, absl::StrJoin(r, ","), "\n");
  return WriteAtomically(out, text);
}

std::string Num(double v) { return std::isfinite(v) ? absl::StrFormat("%.17g", v) : std::string(); }

// The probe's columns at the points inside the metric's domain; says how many
// were outside (before a big bang, inside a horizon) or not finite.
absl::Status WriteProbeInside(MetricModel& model, LossTerm* efe, const Event& observer, const torch::Tensor& points,
                              const fs::path& out) {
  torch::Tensor inside;
  {
    torch::NoGradGuard no_grad;
    inside = model.in_domain(points).to(torch::kCPU);
  }
  auto kept = points.index({inside.to(points.device())});
  std::vector<int64_t> non_finite;
  LUMPY_RETURN_IF_ERROR(WriteProbeCsv(model, efe, observer, kept, out, &non_finite));
  std::cerr << "  " << out.filename().string() << ": " << kept.size(0) << " points";
  if (kept.size(0) < points.size(0)) {
    std::cerr << " (" << points.size(0) - kept.size(0) << " outside the metric's domain left out)";
  }
  if (!non_finite.empty()) std::cerr << ", " << non_finite.size() << " with non-finite geometry";
  std::cerr << std::endl;
  return absl::OkStatus();
}

// The observer's world line (t, x_o, y_o, z_o), t in [t_o - 5, t_o].
absl::Status WorldLine(MetricModel& model, LossTerm* efe, const Event& observer, const ReportOptions& o,
                       const torch::TensorOptions& options, const fs::path& dir) {
  return WriteProbeInside(model, efe, observer, WorldLinePoints(o.worldline, observer, options),
                          dir / "worldline.csv");
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> WorldLineKinematics(const Jet& jet, bool notebook) {
  // The notebook's numbers are the Geometry's own 3+1 formulas fed d_c g_i0
  // (not symmetric in i, c) where d_t gamma_ic belongs.
  Jet used = jet;
  if (notebook) {
    used.dg = jet.dg.clone();
    used.dg.narrow(1, 1, 3).narrow(2, 1, 3).select(3, 0).copy_(jet.dg.narrow(1, 1, 3).select(2, 0).narrow(2, 1, 3));
  }
  Geometry geometry(used);
  return {geometry.hubble_mean(), geometry.shear_squared()};
}

namespace {

// The world line's kinematics both ways (correct and as the part-1 notebook
// computed them), for the figure that shows which one the post showed.
absl::Status NotebookWorldLine(MetricModel& model, const Event& observer, const ReportOptions& o,
                               const torch::TensorOptions& options, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  auto points = WorldLinePoints(o.worldline, observer, options);
  Jet jet = model.jet(points, 1);
  auto [h, s] = WorldLineKinematics(jet, false);
  auto [hn, sn] = WorldLineKinematics(jet, true);
  std::vector<std::vector<std::string>> rows;
  auto col = [](const torch::Tensor& x) { return x.to(torch::kCPU, torch::kFloat64).contiguous(); };
  auto t = col(points.select(1, 0)), hc = col(h), sc = col(s), hnc = col(hn), snc = col(sn);
  for (int64_t i = 0; i < o.worldline; ++i) {
    rows.push_back({Num(t[i].item<double>()), Num(hc[i].item<double>()), Num(sc[i].item<double>()),
                    Num(hnc[i].item<double>()), Num(snc[i].item<double>())});
  }
  const fs::path out = dir / "worldline_notebook.csv";
  LUMPY_RETURN_IF_ERROR(WriteCsv(out, "t,H_mean,shear_sq,H_mean_notebook,shear_sq_notebook", rows));
  std::cerr << "  " << out.filename().string() << ": H_mean and shear as the part-1 notebook computed them "
            << "(d_c g_a0 in place of d_t gamma_ij) beside the correct ones" << std::endl;
  return absl::OkStatus();
}

// The observer's today on the planes through it (z = z_o, x = x_o, y = y_o)
// over the first domain's box (the training domain [-1, 1]^3 of
// docs/physics.md if there is no domain).
absl::Status Planes(MetricModel& model, LossTerm* efe, const Experiment& exp, const Event& observer,
                    const ReportOptions& o, const torch::TensorOptions& options, const fs::path& dir) {
  static const std::vector<double> kUnit = {-1.0, 1.0};
  const DomainSpec* d = exp.domains.empty() ? nullptr : &exp.domains.front();
  const std::vector<double>* box[3] = {d ? &d->x : &kUnit, d ? &d->y : &kUnit, d ? &d->z : &kUnit};
  const std::vector<double> extent = {(*box[0])[0], (*box[0])[1], (*box[1])[0], (*box[1])[1], (*box[2])[0], (*box[2])[1]};
  for (const char* plane : {"xy", "yz", "xz"}) {
    auto points = PlanePoints(plane, o.grid, extent, observer, options);
    if (auto st = WriteProbeInside(model, efe, observer, points, dir / absl::StrCat("plane_", plane, ".csv"));
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

// Each learned curriculum's weight on the t-x plane (y = z = 0): the weight
// w_i = B dL/dl_i its reduction gives point i's loss (a uniform mean gives
// 1; spatial_weight_net gives e^(-2W)/2). Read from a training checkpoint.
absl::Status Curricula(Components& c, const fs::path& checkpoint, const ReportOptions& o,
                       const torch::TensorOptions& options, const fs::path& dir) {
  std::vector<DomainComponent*> learned;
  for (auto& d : c.domains) {
    if (!d.weighter->parameters().empty()) learned.push_back(&d);
  }
  if (learned.empty()) return absl::OkStatus();
  if (!fs::exists(checkpoint)) {
    std::cerr << "  no " << checkpoint.string() << ": the curricula's weights are left out" << std::endl;
    return absl::OkStatus();
  }
  torch::serialize::InputArchive a, weighters;
  try {
    a.load_from(checkpoint.string());
    a.read("weighters", weighters);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(checkpoint.string(), ": ", e.what_without_backtrace()));
  }
  for (DomainComponent* d : learned) {
    d->weighter->to(options.device(), options.dtype().toScalarType());
    torch::serialize::InputArchive w;
    if (!weighters.try_read(d->spec->name, w)) {
      return absl::InvalidArgumentError(absl::StrCat(checkpoint.string(), ": no curriculum of domain ",
                                                     d->spec->name));
    }
    if (auto st = LoadModuleState(w, *d->weighter, "the curriculum of domain " + d->spec->name); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(checkpoint.string(), ": ", st.message()));
    }
    double t0 = 1e300, t1 = -1e300;
    for (const auto& s : d->spec->strata) {
      t0 = std::min(t0, s.t_min);
      t1 = std::max(t1, s.t_max);
    }
    auto t = torch::linspace(t0, t1, o.grid, options);
    auto x = torch::linspace(d->spec->x[0], d->spec->x[1], o.grid, options);
    auto mesh = torch::meshgrid({t, x}, "ij");
    const int64_t n = o.grid * o.grid;
    auto points = torch::zeros({n, 4}, options);
    points.select(1, 0).copy_(mesh[0].reshape({-1}));
    points.select(1, 1).copy_(mesh[1].reshape({-1}));
    auto loss = torch::ones({n}, options).requires_grad_(true);
    auto reduced = d->weighter->reduce(points, loss);
    auto weight = torch::autograd::grad({reduced}, {loss})[0] * static_cast<double>(n);
    weight = weight.to(torch::kCPU, torch::kFloat64).contiguous();
    auto p = points.to(torch::kCPU, torch::kFloat64).contiguous();
    std::vector<std::vector<std::string>> rows;
    for (int64_t i = 0; i < n; ++i) {
      rows.push_back({Num(p[i][0].item<double>()), Num(p[i][1].item<double>()), Num(weight[i].item<double>())});
    }
    const fs::path out = dir / absl::StrCat("curriculum_", d->spec->name, ".csv");
    LUMPY_RETURN_IF_ERROR(WriteCsv(out, "t,x,weight", rows));
    std::cerr << "  " << out.filename().string() << ": " << d->spec->curriculum.entry->name
              << " on the t-x plane, weight " << weight.min().item<double>() << " to "
              << weight.max().item<double>() << std::endl;
  }
  return absl::OkStatus();
}

// The Hubble diagram of a term that has one (distance datasets: the SDK's
// HubbleDiagramSource, lumpy/report.h): hubble_<term>.csv, and the model's curve in
// hubble_<term>_curve.csv. A term without one is skipped.
absl::Status Hubble(MetricModel& model, const LossComponent& l, const Event& observer,
                    const torch::TensorOptions& options, const fs::path& dir) {
  HubbleDiagramSource* source = HubbleDiagramOf(*l.term);
  if (source == nullptr) return absl::OkStatus();
  auto diagram = source->hubble_diagram(model, options, observer);
  LUMPY_RETURN_IF_ERROR(diagram.status());
  auto num = [](double v) { return std::isnan(v) ? std::string() : Num(v); };
  std::vector<std::vector<std::string>> rows;
  for (const auto& o : diagram->objects) {
    rows.push_back({o.name, Num(o.z), num(o.ra), num(o.dec), Num(o.mu_obs), Num(o.sigma), Num(o.mu_model),
                    Num(o.mu_model - o.mu_obs), o.reached ? "1" : "0"});
  }
  const fs::path out = dir / absl::StrCat("hubble_", l.spec->name, ".csv");
  LUMPY_RETURN_IF_ERROR(WriteCsv(out, "cid,z,ra,dec,mu_obs,sigma,mu_model,residual,reached", rows));
  std::vector<std::vector<std::string>> curve;
  for (const auto& p : diagram->curve) curve.push_back({p.ray, Num(p.z), Num(p.mu)});
  const fs::path curve_out = dir / absl::StrCat("hubble_", l.spec->name, "_curve.csv");
  LUMPY_RETURN_IF_ERROR(WriteCsv(curve_out, "ray,z,mu_model", curve));
  std::cerr << "  " << out.filename().string() << ": " << diagram->note << ", curve in "
            << curve_out.filename().string() << std::endl;
  return absl::OkStatus();
}

}  // namespace

int RunCertify(const CertifyCommandOptions& o) {
  const fs::path run_dir(o.run_dir);
  LoadedRun run;
  if (int rc = LoadRun(run_dir, o.checkpoint, &run)) return rc;
  const int64_t points = o.points > 0 ? o.points : run.exp->certify.GetInt("points");
  if (points <= 0) {
    std::cerr << "certify.points is 0 in this run's experiment; give --points N" << std::endl;
    return kExitConfig;
  }
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json certificate;
  try {
    certificate = Certify(run.c, points, run.options, CertifyOptionsOf(*run.exp));
  } catch (const c10::Error& e) {
    std::cerr << "lumpy certify: " << e.what_without_backtrace() << std::endl;
    return kExitRuntime;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (certificate.empty()) {
    std::cerr << run_dir.string() << ": the experiment has no constraint on a point domain: nothing to certify"
              << std::endl;
    return kExitConfig;
  }
  nlohmann::json out = {{"checkpoint", run.which},
                        {"model_file", fs::relative(run.model_file, run_dir).string()},
                        {"seconds", seconds},
                        {"held_out", certificate}};
  const fs::path file = run_dir / absl::StrCat("certificate_", run.which, ".json");
  if (auto st = WriteAtomically(file, out.dump(2) + "\n"); !st.ok()) return ExitStatus(st);
  for (const auto& line : CertificateLines(certificate)) std::cout << line << "\n";
  std::cout << absl::StrFormat("certified %s (%s) in %.1f s -> %s\n", run.model_file.string(), run.which,
                               seconds, file.string());
  return kExitOk;
}

int RunReport(const ReportOptions& o) {
  const fs::path run_dir(o.run_dir);
  if (o.grid < 2 || o.worldline < 2) {
    std::cerr << "--grid and --worldline: at least 2 points" << std::endl;
    return kExitConfig;
  }
  LoadedRun run;
  if (int rc = LoadRun(run_dir, o.checkpoint, &run)) return rc;
  const Experiment* exp = &*run.exp;
  Components* c = &run.c;
  const auto& options = run.options;
  MetricModel& model = *c->model;
  LossTerm* efe = run.efe;
  const std::string& which = run.which;
  const fs::path& model_file = run.model_file;
  const fs::path& training_checkpoint = run.training_checkpoint;

  const fs::path dir = run_dir / "report";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ExitStatus(absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message())));
  std::cerr << "lumpy report: " << exp->name << " from " << model_file.string() << " (" << which << ") -> "
            << dir.string() << std::endl;
  try {
    if (auto st = WorldLine(model, efe, c->observer, o, options, dir); !st.ok()) return ExitStatus(st);
    if (o.notebook_kinematics || exp->report.GetBool("notebook_kinematics")) {
      if (auto st = NotebookWorldLine(model, c->observer, o, options, dir); !st.ok()) return ExitStatus(st);
    }
    if (auto st = Planes(model, efe, *exp, c->observer, o, options, dir); !st.ok()) return ExitStatus(st);
    if (auto st = Curricula(*c, training_checkpoint, o, options, dir); !st.ok()) return ExitStatus(st);
    for (const auto& l : c->losses) {
      if (auto st = Hubble(model, l, c->observer, options, dir); !st.ok()) return ExitStatus(st);
    }
  } catch (const c10::Error& e) {
    std::cerr << "lumpy report: " << e.what_without_backtrace() << std::endl;
    return kExitRuntime;
  }
  if (o.figures) {
    std::string why;
    if (!RunFigureScript("report_figures.py", {run_dir.string()}, &why)) {
      std::cerr << "warning: no figures: " << why << " (the CSV tables are in " << dir.string() << ")"
                << std::endl;
      return kExitRuntime;
    }
  }
  if (o.figures) {
    std::cerr << "report: " << (dir / "report.md").string() << std::endl;
  } else {
    std::cerr << "report tables: " << dir.string()
              << " (report.md, the figures and the loss tables come with the figures: run without --no-figures)"
              << std::endl;
  }
  return kExitOk;
}

}  // namespace lumpy
