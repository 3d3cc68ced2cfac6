// The command line's wiring: every subcommand and its options (CLI11), each
// calling the command's own file (run_command.h, check_command.h,
// probe_command.h, distances.h, mock_sn.h, ablate.h, report.h, sky.h,
// claims.h, study.h, plugins_table.h); usage errors exit 2, and what a
// command throws is said here (out of memory, a path the OS refuses, an
// internal error).
#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/ablate.h"
#include "cli/check_command.h"
#include "cli/claims.h"
#include "cli/distances.h"
#include "cli/executor.h"
#include "cli/exit_status.h"
#include "cli/mock_sn.h"
#include "cli/plugins_table.h"
#include "cli/probe.h"
#include "cli/probe_command.h"
#include "cli/report.h"
#include "cli/run_command.h"
#include "cli/sky.h"
#include "cli/study.h"
#include "config/experiment.h"
#include "core/out_of_memory.h"
#include "lumpy/build_info.h"

namespace lumpy {

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
  auto o = std::make_shared<RunCommandOptions>();
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
  run->callback([o, action] { *action = [o] { return RunTraining(*o); }; });
}

void AddResumeCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<ResumeCommandOptions>();
  CLI::App* resume = app.add_subcommand(
      "resume", "continue a run from its latest checkpoint (the same trajectory as an unbroken run)");
  resume->add_option("run_dir", o->run_dir, "the run folder")->required();
  resume->add_option("--steps", o->steps, "new total number of steps (default: the run's own)")
      ->check(WholeNumber(RuntimeSpec("steps")));
  AddRanksOption(resume, &o->ranks);
  resume->callback([o, action] { *action = [o] { return RunResume(*o); }; });
}

void AddCheckCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<CheckCommandOptions>();
  CLI::App* check = app.add_subcommand("check", "validate experiments without running them");
  check->add_option("experiments", o->files, "experiment TOML files")->required();
  check->add_option("--set", o->sets, "override one key in every file")->allow_extra_args(false);
  check->callback([o, action] { *action = [o] { return RunCheck(*o); }; });
}

void AddProbeCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<ProbeCommandOptions>();
  CLI::App* probe =
      app.add_subcommand("probe", "metric, curvature, EFE residual, Hubble rates and shear at given points");
  probe->add_option("experiment", o->experiment, "experiment TOML file (its metric)")->required();
  probe->add_option("--checkpoint", o->checkpoint,
                    "a run folder, its model.pt, or checkpoints/{latest,best}.pt (trained parameters)");
  probe->add_option("--points", o->points, "CSV with a header naming t,x,y,z")->required();
  probe->add_option("--out", o->out, "output CSV: " + absl::StrJoin(ProbeColumns(), ","))->required();
  probe->add_option("--set", o->sets, "override one key, e.g. --set runtime.dtype=float32")
      ->allow_extra_args(false);
  probe->callback([o, action] { *action = [o] { return RunProbe(*o); }; });
}

void AddDistancesCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<DistancesOptions>();
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
  distances->callback([o, action] { *action = [o] { return RunDistances(*o); }; });
}

void AddMockSnCommand(CLI::App& app, Action* action) {
  auto o = std::make_shared<MockSnOptions>();
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
  mock->callback([o, action] { *action = [o] { return RunMockSn(*o); }; });
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
      ->check(CLI::IsMember(ExecutorNames()));
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
  Action action = [] { return RunTraining({}); };  // no command: the quickstart
  for (auto add : {AddRunCommand, AddResumeCommand, AddCheckCommand, AddProbeCommand, AddDistancesCommand,
                   AddMockSnCommand, AddAblateCommand, AddReportCommand, AddCertifyCommand, AddSkyCommand,
                   AddClaimsCommand, AddStudyCommand}) {
    add(app, &action);
  }
  app.add_subcommand("plugins", "list every plugin: kind, library, parameters (type, default, range, doc)")
      ->callback([&action] { action = ListPlugins; });

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
