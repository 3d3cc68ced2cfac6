#include "cli/cli.h"

#include "core/out_of_memory.h"

#include "cli/ablate.h"
#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "cli/report.h"
#include "cli/claims.h"
#include "cli/study.h"
#include "cli/ranks_launcher.h"
#include "cli/sky.h"

#include <CLI/CLI.hpp>

#include "core/executable.h"
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "config/experiment.h"
#include "loader/plugin_loader.h"
#include "physics/probe.h"
#include "lumpy/build_info.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/supernovae.h"
#include "train/checkpoint.h"
#include "train/stop_signals.h"
#include "train/trainer.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// What --checkpoint of report and certify takes: the choices of the
// experiment's [report] checkpoint, one list for both.
std::vector<std::string> CheckpointChoices() {
  for (const auto& spec : ReportParams()) {
    if (spec.name() == "checkpoint") return spec.choices();
  }
  return {};
}

// RUN_DIR and --checkpoint of the commands that read a run (report,
// certify, sky).
void AddRunOptions(CLI::App* command, std::string* run_dir, std::string* checkpoint) {
  command->add_option("run_dir", *run_dir, "the run folder")->required();
  command->add_option("--checkpoint", *checkpoint,
                      "final (model.pt), latest, best (the best checkpoint interval) or best_step (the "
                      "single best step's model); default: the experiment's [report] checkpoint")
      ->check(CLI::IsMember(CheckpointChoices()));
}


// A finite number > 0 (CLI11's PositiveNumber lets NaN through: NaN <= 0 is
// false) or >= 0.
CLI::Validator Finite(bool zero_ok) {
  return CLI::Validator(
      [zero_ok](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || v < 0 || (!zero_ok && v == 0)) {
          return absl::StrCat("must be a finite number ", zero_ok ? ">= 0" : "> 0", ", got ", text);
        }
        return "";
      },
      zero_ok ? "FINITE>=0" : "FINITE>0");
}

// runtime.NAME's declaration, for the command-line options that override it.
ParamSpec RuntimeSpec(const std::string& name) {
  for (const auto& spec : RuntimeParams()) {
    if (spec.name() == name) return spec;
  }
  throw std::logic_error("no runtime." + name);
}

// A whole number checked as its TOML twin `spec` is (the same bounds, the same
// words): CLI11's own checks clamp 1e30 to the largest int64 and print a
// 309-digit maximum.
CLI::Validator WholeNumber(ParamSpec spec) {
  const std::string range = spec.RangeText();
  return CLI::Validator(
      [spec](std::string& text) -> std::string {
        int64_t v = 0;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (ec == std::errc::result_out_of_range) {
          return absl::StrCat("must be a whole number ", spec.RangeText(), ", got ", text,
                              " (beyond 64 bits)");
        }
        if (ec != std::errc() || ptr != end) {
          return absl::StrCat("must be a whole number ", spec.RangeText(), ", got ", text);
        }
        ParamValue value = v;
        if (auto error = spec.Check(value)) return *error;
        return "";
      },
      range.empty() ? "INT" : "INT " + range);
}

// The quickstart: installed beside the binary, or in the source tree of a build.
fs::path QuickstartPath() {
  fs::path exe(LumpyExecutable().string());
  fs::path installed =
      (exe.parent_path() / ".." / "share" / "lumpy" / "experiments" / "quickstart.toml")
          .lexically_normal();
  if (fs::exists(installed)) return installed;
  return fs::path(LUMPY_SOURCE_DIR) / "experiments" / "quickstart.toml";
}

// runs/<name>, or runs/<name>-2, -3, ... so that no earlier run is overwritten.
fs::path DefaultRunDir(const std::string& name) {
  fs::path base = fs::path("runs") / name;
  if (!fs::exists(base)) return base;
  for (int i = 2;; ++i) {
    fs::path candidate = fs::path("runs") / absl::StrCat(name, "-", i);
    if (!fs::exists(candidate)) return candidate;
  }
}

// Rank 0 of several, or the only process: it speaks for the run.
bool FirstRank() {
  const char* rank = std::getenv("LUMPY_RANK");
  const char* proc = std::getenv("SLURM_PROCID");
  return (rank == nullptr || std::string(rank) == "0") && (proc == nullptr || std::string(proc) == "0");
}

// ", on 2 ranks" where this process is one of several.
std::string RanksNote() {
  const char* world = std::getenv("LUMPY_WORLD_SIZE");
  if (world == nullptr) world = std::getenv("SLURM_NTASKS");
  return world != nullptr && std::atoi(world) > 1 ? absl::StrCat(", on ", world, " ranks") : "";
}

// Under srun with several tasks every task must name the same run folder.
bool SlurmRanks() {
  const char* tasks = std::getenv("SLURM_NTASKS");
  return tasks != nullptr && std::atoi(tasks) > 1 && std::getenv("SLURM_PROCID") != nullptr;
}

// A signal while the ranks' run was being set up: none is started.
int StoppedBeforeStart(int sig) {
  std::cerr << "lumpy: stopped by signal " << sig << " before the ranks were started; nothing was run" << std::endl;
  return 128 + sig;
}

int CommandRun(const std::string& experiment_arg, const std::vector<std::string>& sets,
               const std::string& out, int64_t steps, int64_t ranks, const std::string& init) {
  StopSignals signals;  // from the start: a signal while the run is set up stops it cleanly too
  fs::path file = experiment_arg.empty() ? QuickstartPath() : fs::path(experiment_arg);
  std::vector<std::string> overrides = sets;
  if (steps > 0) overrides.push_back(absl::StrCat("runtime.steps=", steps));
  LoadedExperiment loaded;
  if (int rc = ExitStatus(LoadAndBuild(file, overrides, &loaded))) return rc;
  const Experiment* exp = &*loaded.exp;
  if (out.empty() && SlurmRanks()) {
    std::cerr << "lumpy run: under srun with several tasks, give --out: every task must name the same run folder"
              << std::endl;
    return kExitConfig;
  }
  fs::path run_dir = out.empty() ? DefaultRunDir(exp->name) : fs::path(out);
  if (int rc = ExitStatus(CheckTrainable(*exp, loaded.c))) return rc;
  if (ranks > 1) {
    std::vector<std::string> args = {"run", file.string(), "--out", run_dir.string()};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    if (steps > 0) args.insert(args.end(), {"--steps", std::to_string(steps)});
    if (!init.empty()) args.insert(args.end(), {"--init", init});
    if (const int sig = signals.received()) return StoppedBeforeStart(sig);
    return LaunchRanks(ranks, run_dir, args);
  }
  if (FirstRank()) {
    std::cerr << "lumpy " << LUMPY_VERSION_STRING << ": " << exp->name << " ("
              << exp->runtime.GetInt("steps") << " steps, " << exp->runtime.GetString("dtype")
              << ", " << torch::get_num_threads() << " threads" << RanksNote() << ") -> " << run_dir.string()
              << std::endl;
  }
  TrainOptions train{run_dir, true};
  train.init = init;
  absl::Status st = Train(*exp, loaded.c, train);
  if (st.ok() && FirstRank()) std::cerr << "done: " << (run_dir / "summary.json").string() << std::endl;
  return ExitStatus(st);
}

// Continues RUN_DIR from checkpoints/latest.pt, with the run's own resolved
// experiment; --steps sets a new total.
int CommandResume(const std::string& run_arg, int64_t steps, int64_t ranks) {
  StopSignals signals;  // from the start, as CommandRun
  const fs::path run_dir(run_arg);
  const fs::path file = run_dir / "experiment.toml";
  if (!fs::is_regular_file(file)) {
    std::cerr << run_dir.string()
              << ": not a run folder (no experiment.toml); give the folder `lumpy run` wrote"
              << std::endl;
    return kExitConfig;
  }
  std::vector<std::string> overrides;
  if (steps > 0) overrides.push_back(absl::StrCat("runtime.steps=", steps));
  LoadedExperiment loaded;
  if (int rc = ExitStatus(LoadAndBuild(file, overrides, &loaded))) return rc;
  const Experiment* exp = &*loaded.exp;
  if (ranks > 1) {
    std::vector<std::string> args = {"resume", run_dir.string()};
    if (steps > 0) args.insert(args.end(), {"--steps", std::to_string(steps)});
    if (const int sig = signals.received()) return StoppedBeforeStart(sig);
    return LaunchRanks(ranks, run_dir, args);
  }
  if (FirstRank()) {
    std::cerr << "lumpy " << LUMPY_VERSION_STRING << ": resuming " << exp->name << " in "
              << run_dir.string() << " up to step " << exp->runtime.GetInt("steps") << RanksNote() << std::endl;
  }
  absl::Status st = Train(*exp, loaded.c, {run_dir, true, /*resume=*/true});
  if (st.ok() && FirstRank()) std::cerr << "done: " << (run_dir / "summary.json").string() << std::endl;
  return ExitStatus(st);
}

int CommandCheck(const std::vector<std::string>& files, const std::vector<std::string>& sets) {
  int worst = kExitOk;
  for (const auto& f : files) {
    LoadedExperiment loaded;
    absl::Status st = LoadAndBuild(f, sets, &loaded);
    if (st.ok()) st = CheckTrainable(*loaded.exp, loaded.c);
    if (st.ok()) {
      const Experiment* exp = &*loaded.exp;
      std::cout << f << ": ok (" << exp->model.entry->name << " metric, "
                << exp->domains.size() << " domain(s), " << exp->losses.size()
                << " loss term(s), " << exp->runtime.GetInt("steps") << " steps)" << std::endl;
    } else {
      worst = std::max(worst, ExitStatus(st));
    }
  }
  return worst;
}

// What probe, distances and mock-sn share: the experiment's metric, on the
// runtime's dtype and device, with a checkpoint's parameters if one is given.
int LoadModel(const std::string& experiment, const std::vector<std::string>& sets,
              const std::string& checkpoint, LoadedExperiment* out) {
  if (int rc = ExitStatus(LoadAndBuild(experiment, sets, out))) return rc;
  return ExitStatus(LoadMetric(checkpoint, out));
}

int CommandProbe(const std::string& experiment, const std::vector<std::string>& sets,
                 const std::string& checkpoint, const std::string& points, const std::string& out) {
  std::error_code ec;
  if (fs::exists(out) && fs::exists(points) && fs::equivalent(out, points, ec)) {
    std::cerr << "--out " << out << ": is the --points file itself; give another file for the table" << std::endl;
    return kExitConfig;
  }
  LoadedExperiment loaded;
  if (int rc = LoadModel(experiment, sets, checkpoint, &loaded)) return rc;
  // The efe_residual column is filled by the experiment's term that offers
  // it (LossTerm::probe_column), if any.
  LossTerm* efe = ProbeColumnTerm(loaded.c);
  std::string warning;
  absl::Status st =
      ProbeToCsv(*loaded.c.model, efe, points, out, loaded.options, &warning);
  if (!warning.empty()) std::cerr << "warning: " << warning << std::endl;
  if (st.ok() && efe == nullptr) {
    std::cerr << "note: the experiment has no efe_residual term; that column is empty" << std::endl;
  }
  return ExitStatus(st);
}

// Luminosity, angular-diameter and Hubble distances and distance moduli at
// the given redshifts, as CSV on standard output (full precision): along the
// reference ray, or (physical mode) along the sky direction RA,DEC.
int CommandDistances(const std::string& experiment, const std::vector<std::string>& sets,
                     const std::string& checkpoint, const std::vector<double>& z,
                     const std::vector<double>& direction, std::string mode) {
  if (mode.empty()) mode = direction.empty() ? "reference" : "physical";
  if (mode == "reference" && !direction.empty()) {
    std::cerr << "--direction: the reference ray always runs along +x from the observer; "
                 "sky directions need --mode physical (the default with --direction)"
              << std::endl;
    return kExitConfig;
  }
  std::vector<double> radec = direction.empty() ? std::vector<double>{0.0, 0.0} : direction;
  if (radec.size() != 2 || !std::isfinite(radec[0]) || !std::isfinite(radec[1]) ||
      std::abs(radec[1]) > 90) {
    std::cerr << "--direction: expected RA,DEC in degrees with |DEC| <= 90, e.g. --direction "
                 "150.1,2.2"
              << std::endl;
    return kExitConfig;
  }
  for (double v : z) {
    if (!(v > 0) || !std::isfinite(v)) {
      std::cerr << "--z: every redshift must be finite and > 0, got " << v << std::endl;
      return kExitConfig;
    }
  }
  LoadedExperiment loaded;
  if (int rc = LoadModel(experiment, sets, checkpoint, &loaded)) return rc;
  torch::NoGradGuard no_grad;
  auto zt = torch::tensor(z, torch::kFloat64).to(loaded.options);
  RayTracerOptions tracer;
  tracer.hubble_distance = true;
  MetricModel& model = *loaded.c.model;
  SkyDistances traced;
  if (mode == "physical") {
    auto dir = SkyDirections(torch::tensor({radec[0]}), torch::tensor({radec[1]}));
    auto ray_of = torch::zeros({static_cast<int64_t>(z.size())}, torch::kLong);
    traced = TraceSky(model, dir, ray_of, zt, loaded.options, tracer);
  } else {
    traced = TraceReference(model, zt, loaded.options, tracer);
  }
  std::cerr << (mode == "physical" ? "physical ray: " : "reference ray: ") << traced.stop.accepted
            << " steps (" << traced.stop.rejected << " rejected), stopped by "
            << traced.stop.Summary() << std::endl;
  auto d_l = traced.luminosity_distance.to(torch::kFloat64).cpu();
  auto d_a = traced.angular_distance.to(torch::kFloat64).cpu();
  auto d_h = traced.hubble_distance.to(torch::kFloat64).cpu();
  auto reached = traced.reached.cpu();
  std::cout << "z,d_L_mpc,d_A_mpc,d_H_mpc,mu\n";
  std::vector<double> missed;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!reached[i].item<bool>()) {
      std::cout << absl::StrFormat("%.17g,,,,\n", z[i]);
      missed.push_back(z[i]);
      continue;
    }
    const double dl = d_l[i].item<double>();
    std::cout << absl::StrFormat("%.17g,%.17g,%.17g,%.17g,%.17g\n", z[i], dl, d_a[i].item<double>(),
                                 d_h[i].item<double>(), 5 * std::log10(dl) + 25);
  }
  std::cout.flush();
  if (!missed.empty()) {
    std::cerr << "warning: the ray stopped (" << traced.stop.Summary() << ") at z = "
              << traced.z_max.max().item<double>() << " before reaching z = "
              << absl::StrJoin(missed, ", ") << "; those rows are empty" << std::endl;
  }
  return kExitOk;
}

// A mock supernova catalogue in the Pantheon+ format: redshifts log-uniform
// in [z_min, z_max] (sorted), isotropic sky positions, distance moduli from
// the experiment's metric along the reference ray plus Gaussian noise of
// standard deviation sigma (the file's error column), all from one seed.
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

int CommandMockSn(const std::string& experiment, const std::vector<std::string>& sets,
                  const std::string& checkpoint, const std::string& out, int64_t n, uint64_t seed,
                  double sigma, bool noise, double z_min, double z_max) {
  if (!(z_min > 0 && z_min < z_max && std::isfinite(z_max))) {
    std::cerr << "--z-min/--z-max: need 0 < z-min < z-max, got " << z_min << ", " << z_max << std::endl;
    return kExitConfig;
  }
  if (std::filesystem::exists(out)) {
    std::cerr << out << ": exists; mock-sn never overwrites a file" << std::endl;
    return kExitConfig;
  }
  LoadedExperiment loaded;
  if (int rc = LoadModel(experiment, sets, checkpoint, &loaded)) return rc;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto u = torch::rand({n}, gen, f64);
  auto z = std::get<0>(torch::sort(z_min * torch::pow(z_max / z_min, u)));
  auto ra = 360.0 * torch::rand({n}, gen, f64);
  auto dec = torch::rad2deg(torch::asin(2.0 * torch::rand({n}, gen, f64) - 1.0));
  auto eps = noise ? sigma * torch::randn({n}, gen, f64) : torch::zeros({n}, f64);
  auto traced = TraceReference(*loaded.c.model, z.to(loaded.options), loaded.options);
  if (!traced.reached.all().item<bool>()) {
    std::cerr << "the reference ray stopped (" << traced.stop.Summary() << ") at z = "
              << traced.z_max.item<double>() << ", below --z-max " << z_max << std::endl;
    return kExitRuntime;
  }
  auto mu = 5.0 * torch::log10(traced.luminosity_distance.to(torch::kFloat64).cpu()) + 25.0 + eps;
  {
    std::ostringstream f;
    // Provenance first ('#' lines are comments to the reader).
    f << "# lumpy mock-sn " << OneLine(experiment) << (checkpoint.empty() ? "" : " --checkpoint " + OneLine(checkpoint))
      << absl::StrFormat(" --n %d --seed %d --sigma %g%s --z-min %g --z-max %g", n, seed, sigma,
                         noise ? "" : " --no-noise", z_min, z_max);
    for (const auto& s : sets) f << " --set " << OneLine(s);
    f << "\n# mu from the reference ray of the experiment's metric\n";
    f << "CID zHD zCMB zHEL MU_SH0ES MU_SH0ES_ERR_DIAG IS_CALIBRATOR RA DEC\n";
    for (int64_t i = 0; i < n; ++i) {
      const double zi = z[i].item<double>();
      f << absl::StrFormat("mock%05d %.17g %.17g %.17g %.17g %.17g 0 %.17g %.17g\n", i, zi, zi, zi,
                           mu[i].item<double>(), sigma, ra[i].item<double>(),
                           dec[i].item<double>());
    }
    if (int rc = ExitStatus(WriteAtomically(out, f.str()))) return rc;
  }
  // Read back as a user will before success is claimed.
  SupernovaOptions read_back;
  auto written = LoadSupernovae(out, read_back);
  if (!written.ok() || written->size() != n) {
    std::error_code ec;
    std::filesystem::remove(out, ec);
    std::cerr << out << ": the catalogue written cannot be read back ("
              << (written.ok() ? absl::StrCat(written->size(), " of ", n, " rows") : std::string(written.status().message()))
              << "); removed" << std::endl;
    return kExitRuntime;
  }
  std::cerr << "wrote " << n << " mock supernovae (seed " << seed << ", sigma " << sigma
            << (noise ? "" : ", no noise") << ") to " << out << std::endl;
  return kExitOk;
}

void PrintParams(const ParamSpecs& specs, const std::string& indent) {
  size_t name_w = 4, type_w = 4, def_w = 7, range_w = 5;
  for (const auto& s : specs) {
    name_w = std::max(name_w, s.name().size());
    type_w = std::max(type_w, std::string(ParamTypeName(s.type())).size());
    def_w = std::max(def_w, s.default_value() ? FormatParamValue(*s.default_value()).size() : 8);
    range_w = std::max(range_w, s.RangeText().size());
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - std::min(w, s.size()) + 2, ' '); };
  for (const auto& s : specs) {
    std::cout << indent << pad(s.name(), name_w) << pad(ParamTypeName(s.type()), type_w)
              << pad(s.default_value() ? FormatParamValue(*s.default_value())
                                       : s.optional() ? "optional" : "required",
                     def_w)
              << pad(s.RangeText(), range_w) << s.doc() << "\n";
  }
}

int CommandPlugins() {
  Registry registry;
  PluginLoader loader(registry);
  if (int rc = ExitStatus(loader.LoadDefaults())) return rc;
  std::cout << "Plugins (default folder " << PluginLoader::DefaultPluginDirectory().string()
            << "; add folders with LUMPY_PLUGIN_PATH or [plugins] paths)\n";
  for (PluginKind kind : {PluginKind::kMetric, PluginKind::kLoss, PluginKind::kConstraint,
                          PluginKind::kCurriculum}) {
    std::cout << "\n" << PluginKindName(kind) << " plugins:\n";
    auto entries = registry.List(kind);
    if (entries.empty()) std::cout << "  (none loaded)\n";
    for (const PluginEntry* e : entries) {
      std::cout << "\n  " << e->name;
      if (kind == PluginKind::kLoss) {
        std::cout << (e->loss_kind == LossKind::kConstraint ? "  [constraint: needs a handler]"
                      : e->loss_kind == LossKind::kDataset ? "  [dataset: no domain]"
                                                           : "  [objective]");
      }
      std::cout << "  (" << fs::path(e->library).filename().string() << ")\n    " << e->doc
                << "\n";
      if (e->params.empty()) {
        std::cout << "    (no parameters)\n";
      } else {
        PrintParams(e->params, "    ");
      }
    }
  }
  std::cout << "\nExperiment sections owned by the core:\n";
  for (const auto& [name, specs] : {std::pair<const char*, const ParamSpecs*>{"runtime", &RuntimeParams()},
                                    {"telemetry", &TelemetryParams()},
                                    {"optimizer", &OptimizerParams()},
                                    {"checkpoint", &CheckpointParams()},
                                    {"stopping", &StoppingParams()},
                                    {"certify", &CertifyParams()},
                                    {"report", &ReportParams()}}) {
    std::cout << "\n  [" << name << "]\n";
    PrintParams(*specs, "    ");
  }
  std::cout << std::flush;
  return kExitOk;
}

// An allocation failure (core/out_of_memory.h): what the command was doing,
// and what needs less memory.
int OutOfMemory(const CLI::App& app, const std::string& detail) {
  const auto subcommands = app.get_subcommands();
  const std::string command = subcommands.empty() ? "run" : subcommands.front()->get_name();
  const std::map<std::string, std::string> doing = {
      {"run", "training"},          {"resume", "training"},          {"check", "checking the experiment"},
      {"probe", "probing"},         {"certify", "certifying"},       {"sky", "tracing the sky"},
      {"report", "reporting"},      {"distances", "tracing rays"},   {"mock-sn", "writing a mock catalogue"},
      {"ablate", "running the sweep"}, {"plugins", "loading plugins"}};
  const auto it = doing.find(command);
  std::cerr << "lumpy " << command << ": out of memory while " << (it == doing.end() ? command : it->second)
            << " (" << AllocatorDetail(detail) << "); " << OutOfMemoryAdvice()
            << "; a run folder keeps its last checkpoint (lumpy resume)" << std::endl;
  return kExitRuntime;
}

}  // namespace

// Each Add...Command declares one subcommand and its options; once the
// command line names it, its callback sets *action to run it.
using Action = std::function<int()>;

// --ranks N: one training over N processes on this machine (ranks_launcher.h).
void AddRanksOption(CLI::App* command, int64_t* ranks) {
  command
      ->add_option("--ranks", *ranks,
                   "spread the training over N processes on this machine (LibTorch's c10d, Gloo); "
                   "under srun the ranks come from Slurm")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            int64_t n = 0;
            if (!absl::SimpleAtoi(v, &n) || n < 1 || n > 256) {
              return "must be a whole number from 1 to 256 (processes to spread the training over), got " + v;
            }
            return "";
          },
          "INT in [1, 256]"));
}

void AddRunCommand(CLI::App& app, Action* action) {
  struct Args {
    std::string experiment, out;
    std::vector<std::string> sets;
    int64_t steps = 0, ranks = 1;
    std::string init;
  };
  auto o = std::make_shared<Args>();
  CLI::App* run = app.add_subcommand("run", "train an experiment (default: the quickstart)");
  run->add_option("--init", o->init,
                  "start from this model's weights (a run folder, its model.pt or a checkpoint): the metric's "
                  "parameters only, with a fresh optimizer, handlers and curricula");
  run->add_option("experiment", o->experiment, "experiment TOML file");
  run->add_option("--set", o->sets, "override one key, e.g. --set loss.wec.constraint.weight=2")
      ->allow_extra_args(false);
  run->add_option("--out", o->out, "run folder (default runs/<name>, never overwritten)");
  run->add_option("--steps", o->steps, "number of optimizer steps (overrides runtime.steps)")
      ->check(WholeNumber(RuntimeSpec("steps")));
  AddRanksOption(run, &o->ranks);
  run->callback([o, action] {
    *action = [o] { return CommandRun(o->experiment, o->sets, o->out, o->steps, o->ranks, o->init); };
  });
}

void AddResumeCommand(CLI::App& app, Action* action) {
  struct Args {
    std::string dir;
    int64_t steps = 0, ranks = 1;
  };
  auto o = std::make_shared<Args>();
  CLI::App* resume = app.add_subcommand(
      "resume", "continue a run from its latest checkpoint (the same trajectory as an unbroken run)");
  resume->add_option("run_dir", o->dir, "the run folder")->required();
  resume->add_option("--steps", o->steps, "new total number of steps (default: the run's own)")
      ->check(WholeNumber(RuntimeSpec("steps")));
  AddRanksOption(resume, &o->ranks);
  resume->callback([o, action] { *action = [o] { return CommandResume(o->dir, o->steps, o->ranks); }; });
}

void AddCheckCommand(CLI::App& app, Action* action) {
  struct Args {
    std::vector<std::string> files, sets;
  };
  auto o = std::make_shared<Args>();
  CLI::App* check = app.add_subcommand("check", "validate experiments without running them");
  check->add_option("experiments", o->files, "experiment TOML files")->required();
  check->add_option("--set", o->sets, "override one key in every file")->allow_extra_args(false);
  check->callback([o, action] { *action = [o] { return CommandCheck(o->files, o->sets); }; });
}

void AddProbeCommand(CLI::App& app, Action* action) {
  struct Args {
    std::string experiment, checkpoint, points, out;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Args>();
  CLI::App* probe =
      app.add_subcommand("probe", "metric, curvature, EFE residual, Hubble rates and shear at given points");
  probe->add_option("experiment", o->experiment, "experiment TOML file (its metric)")->required();
  probe->add_option("--checkpoint", o->checkpoint,
                    "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  probe->add_option("--points", o->points, "CSV with a header naming t,x,y,z")->required();
  probe->add_option("--out", o->out, "output CSV: " + absl::StrJoin(ProbeColumns(), ","))->required();
  probe->add_option("--set", o->sets, "override one key, e.g. --set runtime.dtype=float32")
      ->allow_extra_args(false);
  probe->callback([o, action] {
    *action = [o] { return CommandProbe(o->experiment, o->sets, o->checkpoint, o->points, o->out); };
  });
}

void AddDistancesCommand(CLI::App& app, Action* action) {
  struct Args {
    std::string experiment, checkpoint, mode;
    std::vector<double> direction, z;
    std::vector<std::string> sets;
  };
  auto o = std::make_shared<Args>();
  CLI::App* distances =
      app.add_subcommand("distances",
                         "luminosity and angular-diameter distances and distance moduli along a ray "
                         "(CSV z,d_L_mpc,d_A_mpc,mu on standard output)");
  distances->add_option("experiment", o->experiment, "experiment TOML file (its metric)")->required();
  distances->add_option("--checkpoint", o->checkpoint,
                        "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  distances->add_option("--z", o->z, "redshifts, e.g. --z 0.1,0.5,1")->required()->delimiter(',');
  distances
      ->add_option("--direction", o->direction,
                   "RA,DEC in degrees: a ray along this sky direction (physical mode)")
      ->delimiter(',');
  distances
      ->add_option("--mode", o->mode,
                   "reference (one ray along +x, the default) or physical "
                   "(comoving observer's frame, Jacobi-map D_A)")
      ->check(CLI::IsMember({"reference", "physical"}));
  distances->add_option("--set", o->sets, "override one key, e.g. --set model.h0=67")
      ->allow_extra_args(false);
  distances->callback([o, action] {
    *action = [o] {
      return CommandDistances(o->experiment, o->sets, o->checkpoint, o->z, o->direction, o->mode);
    };
  });
}

void AddMockSnCommand(CLI::App& app, Action* action) {
  struct Args {
    std::string experiment, checkpoint, out;
    std::vector<std::string> sets;
    int64_t n = 1000;
    uint64_t seed = 1;
    double sigma = 0.15, zmin = 0.01, zmax = 2.3;
    bool no_noise = false;
  };
  auto o = std::make_shared<Args>();
  CLI::App* mock = app.add_subcommand(
      "mock-sn", "a mock supernova catalogue (Pantheon+ format) from the experiment's metric");
  mock->add_option("experiment", o->experiment, "experiment TOML file (its metric)")->required();
  mock->add_option("--checkpoint", o->checkpoint,
                   "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  mock->add_option("--out", o->out, "the catalogue to write (never overwritten)")->required();
  mock->add_option("--n", o->n, "number of supernovae")
      ->check(WholeNumber(ParamSpec::Int("n", "").AtLeast(1).AtMost(10'000'000)));
  mock->add_option("--seed", o->seed, "seed of redshifts, sky positions and noise (0 or more)")
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));  // -1 wrapped to 2^64 - 1
  mock->add_option("--sigma", o->sigma, "distance-modulus error (mag)")->check(Finite(false));
  mock->add_flag("--no-noise", o->no_noise, "exact distance moduli (sigma still written)");
  mock->add_option("--z-min", o->zmin, "smallest redshift")->check(Finite(true));
  mock->add_option("--z-max", o->zmax, "largest redshift")->check(Finite(false));
  mock->add_option("--set", o->sets, "override one key, e.g. --set model.h0=67")->allow_extra_args(false);
  mock->callback([o, action] {
    *action = [o] {
      return CommandMockSn(o->experiment, o->sets, o->checkpoint, o->out, o->n, o->seed, o->sigma,
                           !o->no_noise, o->zmin, o->zmax);
    };
  });
}

void AddAblateCommand(CLI::App& app, Action* action) {
  struct Args : AblateOptions {
    bool no_wait = false;
  };
  auto o = std::make_shared<Args>();
  CLI::App* ablate =
      app.add_subcommand("ablate",
                         "run every combination of --vary values (and seeds) as separate processes; "
                         "compare them in ablation.csv, ablation.md and ablation.png");
  ablate->add_option("experiment", o->experiment, "experiment TOML file");
  ablate
      ->add_option("--vary", o->varies,
                   "KEY=V1,V2,... (repeatable; every combination runs), e.g. --vary "
                   "loss.wec.constraint.plugin=soft_quadratic,linear")
      ->allow_extra_args(false);
  ablate->add_option("--set", o->sets, "override one key in every variant")->allow_extra_args(false);
  ablate->add_option("--seeds", o->seeds, "seeds per variant: the experiment's seed, +1, ...")
      ->check(WholeNumber(ParamSpec::Int("seeds", "").AtLeast(1).AtMost(1000)));
  ablate
      ->add_option("--jobs", o->jobs,
                   "variants at a time (each gets cores/jobs threads unless runtime.threads is set)")
      ->check(WholeNumber(ParamSpec::Int("jobs", "").AtLeast(1).AtMost(1024)));
  ablate->add_option("--out", o->out, "folder for the runs and the table (new or empty)");
  ablate
      ->add_option("--max-runs", o->max_runs,
                   "run a sweep of up to this many runs (default 1000; a larger one is refused, its size stated)")
      ->check(WholeNumber(ParamSpec::Int("max-runs", "").AtLeast(1).AtMost(int64_t{1} << 40)));
  ablate
      ->add_option("--executor", o->executor,
                   "local (processes here, the default) or slurm (one job array, OUT/sweep.sbatch)")
      ->check(CLI::IsMember({"local", "slurm"}));
  ablate->add_option("--collect", o->collect,
                     "build the table of the sweep in DIR from whatever finished, marking the rest");
  auto& slurm = o->slurm;
  ablate->add_option("--partition", slurm.partition, "slurm: partition");
  ablate->add_option("--time", slurm.time, "slurm: time limit per task, e.g. 02:00:00");
  ablate->add_option("--cpus-per-task", slurm.cpus_per_task, "slurm: CPUs per task (runtime.threads follows)")
      ->check(CLI::Range(1, 1024));
  ablate->add_option("--mem", slurm.mem, "slurm: memory per task, e.g. 4G");
  ablate->add_option("--account", slurm.account, "slurm: account");
  ablate->add_option("--qos", slurm.qos, "slurm: quality of service");
  ablate
      ->add_option("--sbatch-arg", slurm.sbatch_args,
                   "slurm: any other sbatch option, e.g. --sbatch-arg=--exclusive")
      ->allow_extra_args(false);
  ablate
      ->add_option("--warn-seconds", slurm.warn_seconds,
                   "slurm: seconds before the time limit at which a task checkpoints and requeues itself "
                   "(default 120)")
      ->check(CLI::Range(10, 86400));
  ablate
      ->add_option("--poll", slurm.poll_seconds,
                   "slurm: seconds between queue polls while waiting (default 5)")
      ->check(CLI::Range(0.05, 3600.0));
  ablate->add_flag("--no-wait", o->no_wait, "slurm: submit, print the job id and return");
  ablate->callback([o, action] {
    *action = [o] {
      o->slurm.wait = !o->no_wait;
      return RunAblation(*o);
    };
  });
}

void AddReportCommand(CLI::App& app, Action* action) {
  struct Args : ReportOptions {
    bool no_figures = false;
  };
  auto o = std::make_shared<Args>();
  CLI::App* report =
      app.add_subcommand("report",
                         "tables and figures of a run in RUN_DIR/report/: training curves, Hubble rates and "
                         "shear along the observer's world line, curvature and shear today, the Hubble "
                         "diagram, curriculum weights (report.md shows them all)");
  AddRunOptions(report, &o->run_dir, &o->checkpoint);
  report->add_option("--grid", o->grid, "points per side of each plane (default 81)")
      ->check(CLI::Range(2, 1000));
  report
      ->add_option("--worldline", o->worldline,
                   "points along the observer's world line, t in [-4, 1] (default 251)")
      ->check(CLI::Range(2, 100000));
  report->add_flag("--no-figures", o->no_figures, "tables only (no Python)");
  report->add_flag("--notebook-kinematics", o->notebook_kinematics,
                   "also H_mean and shear along the world line as the part-1 notebook computed them "
                   "(its d_c g_a0 in place of d_t gamma_ij), beside the correct ones");
  report->callback([o, action] {
    *action = [o] {
      o->figures = !o->no_figures;
      return RunReport(*o);
    };
  });
}

void AddCertifyCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<CertifyCommandOptions>();
  CLI::App* certify =
      app.add_subcommand("certify",
                         "the held-out certificate of a run's checkpoint: R and every constraint on a grid "
                         "through the domain's faces, edges and corners, then a search between its points "
                         "(RUN_DIR/certificate_<checkpoint>.json)");
  AddRunOptions(certify, &o->run_dir, &o->checkpoint);
  certify
      ->add_option("--points", o->points,
                   "grid size per constrained domain (default: the experiment's certify.points)")
      ->check(CLI::Range(int64_t{16}, int64_t{100000000}));
  certify->callback([o, action] { *action = [o] { return RunCertify(*o); }; });
}

void AddSkyCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<SkyOptions>();
  CLI::App* sky = app.add_subcommand(
      "sky",
      "the metric on the real sky against flat LCDM: Pantheon+ (zHD > 0.01, calibrators dropped), "
      "chi^2 along physical rays and the reference ray beside the LCDM best fit on the same selection, "
      "a sky map of the residuals and of today's expansion by direction, and the held-out supernovae's "
      "chi^2 (RUN_DIR/sky_<checkpoint>.json, _bins.csv, _map.png); an experiment file instead of a run: "
      "its metric as it is, into ./sky_<name>/");
  AddRunOptions(sky, &o->run_dir, &o->checkpoint);
  sky->get_option("run_dir")->description("the run folder, or an experiment file (an analytic metric)");
  sky->add_option("--data", o->data, "the catalogue (default Pantheon+SH0ES.dat)");
  sky->add_option("--covariance", o->covariance,
                  "also with this full covariance (N, then N*N numbers over all rows of the catalogue)");
  sky->add_option("--bins", o->bins,
                  "physical rays along this many directions (each supernova read off its nearest); 0: one "
                  "ray per supernova (default 48)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));
  sky->add_flag("--no-figures", o->no_figures, "write the sky map's table without drawing it");
  sky->callback([o, action] { *action = [o] { return RunSky(*o); }; });
}

void AddClaimsCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<ClaimsOptions>();
  CLI::App* claims = app.add_subcommand(
      "claims",
      "every claim of the posts computed from the result folders: claims.md and claims.json (the claim files' "
      "measurements: first_step_equal, final, min, max, tail_min, tail_max, tail_fraction_equal, observer, summary, "
      "worldline_max, worldline_min, worldline_argmax, worldline_argmin, worldline_fraction_negative, worldline_at, "
      "worldline_late_over_early, plane_min, plane_max, plane_fraction_negative, plane_min_over_max, "
      "plane_max_over_min, plane_range_over_max; framework/cli/measurements.h says what each reads)");
  claims->add_option("claim_files", o->claim_files, "claim files or folders (default: the study's claims folder)");
  claims->add_option("--study", o->study, "the study file naming the result folders")
      ->default_val("experiments/blog/study.toml");
  claims->add_option("--out", o->out, "where claims.md and claims.json go")->default_val("experiments/blog");
  claims->add_option("--results", o->results, "the result folders (default: the study's)");
  claims->callback([o, action] { *action = [o] { return RunClaims(*o); }; });
}

void AddStudyCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<StudyOptions>();
  CLI::App* study = app.add_subcommand(
      "study",
      "the whole blog from one command: run every run the study file names that is missing (resuming what "
      "was cut off, skipping what is done), collect each into its result folder (summary, every logged row, "
      "the final and best weights, the report's figures), then compute the claims");
  study->add_option("study", o->study, "the study file")->default_val("experiments/blog/study.toml");
  study->add_option("--work", o->work, "the run folders (kept, so that a repeated command resumes)")
      ->default_val("study_runs");
  study->add_option("--results", o->results, "the result folders (default: the study's)");
  study->add_option("--only", o->only, "these runs only (names, comma-separated)")->delimiter(',');
  study->add_option("--steps", o->steps, "cut every run to this many steps (a quick pass; needs --results)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  study->add_option("--launcher", o->launcher,
                    "run each run behind this command, e.g. \"srun -n1 -c8\" inside a Slurm allocation");
  study->add_flag("--no-run", o->no_run, "collect what finished and compute the claims; start nothing");
  study->add_flag("--no-claims", o->no_claims, "do not compute the claims");
  study->add_flag("--dry-run", o->dry_run, "say what would be run and collected");
  study->callback([o, action] { *action = [o] { return RunStudy(*o); }; });
}

int LumpyMain(int argc, char** argv) {
  CLI::App app{
      "lumpy: physics-informed neural networks for the metric of the universe.\n"
      "With no command, trains the quickstart experiment."};
  app.set_version_flag("--version", std::string("lumpy ") + LUMPY_VERSION_STRING);
  app.require_subcommand(0, 1);
  Action action = [] { return CommandRun("", {}, "", 0, 1, ""); };  // no command: the quickstart
  for (auto add : {AddRunCommand, AddResumeCommand, AddCheckCommand, AddProbeCommand, AddDistancesCommand,
                   AddMockSnCommand, AddAblateCommand, AddReportCommand, AddCertifyCommand, AddSkyCommand,
                   AddClaimsCommand, AddStudyCommand}) {
    add(app, &action);
  }
  app.add_subcommand("plugins", "list every plugin: kind, library, parameters (type, default, range, doc)")
      ->callback([&action] { action = CommandPlugins; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitConfig;
  }
  try {
    return action();
  } catch (const std::bad_alloc&) {
    return OutOfMemory(app, "the C++ allocator failed");
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (IsOutOfMemory(what)) return OutOfMemory(app, what);
    std::cerr << "lumpy: internal error: " << what << std::endl;
    return kExitRuntime;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the OS refuses (a symbolic-link loop, a permission, a name too
    // long) is the user's path, not a bug: said as such, exit 2.
    std::cerr << e.path1().string() << ": " << e.code().message()
              << (e.path2().empty() ? "" : " (and " + e.path2().string() + ")") << std::endl;
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "lumpy: internal error: " << e.what() << std::endl;
    return kExitRuntime;
  }
}

}  // namespace lumpy
