#include "cli/ablate.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/ablate_table.h"
#include "cli/executor.h"
#include "cli/exit_status.h"
#include "cli/sweep_file.h"
#include "config/experiment.h"
#include "core/atomic_file.h"
#include "core/input_file.h"
#include "loader/plugin_loader.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

std::vector<std::string> SplitValues(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  char quote = 0;
  for (char ch : text) {
    if (quote) {
      if (ch == quote) quote = 0;
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
    } else if (ch == '[' || ch == '{') {
      ++depth;
    } else if (ch == ']' || ch == '}') {
      --depth;
    } else if (ch == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur.push_back(ch);
  }
  out.push_back(cur);
  return out;
}

namespace {

using Variant = SweepVariant;

std::string Slug(const std::string& value) {
  std::string s;
  for (char c : value) s.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_');
  while (!s.empty() && s.back() == '_') s.pop_back();
  return s.substr(0, 40);
}

absl::StatusOr<Sweep> ReadSweep(const fs::path& dir) {
  if (!fs::exists(dir / "sweep.json") && !fs::is_symlink(dir / "sweep.json")) {
    return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": not a sweep folder (no sweep.json; "
                                                   "give the --out folder of a lumpy ablate)"));
  }
  LUMPY_ASSIGN_OR_RETURN(auto text, ReadInputFile(dir / "sweep.json", InputKind::kRunFile, "sweep description"));
  LUMPY_ASSIGN_OR_RETURN(Sweep s, ParseSweep(text, dir / "sweep.json"));
  s.dir = fs::absolute(dir);
  return s;
}

// --vary KEY=V1,V2,... as (KEY, [V1, V2, ...]) axes; InvalidArgument for a
// malformed one.
using Axes = std::vector<std::pair<std::string, std::vector<std::string>>>;
absl::StatusOr<Axes> ParseAxes(const std::vector<std::string>& varies) {
  Axes axes;
  for (const auto& v : varies) {
    const size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--vary ", v, ": expected KEY=V1,V2,... e.g. --vary optimizer.lr=1e-4,1e-3"));
    }
    axes.push_back({v.substr(0, eq), SplitValues(v.substr(eq + 1))});
  }
  return axes;
}

// Every combination of one value per axis, as KEY=V assignments in axis order.
std::vector<std::vector<std::string>> Grid(const Axes& axes) {
  std::vector<std::vector<std::string>> grid = {{}};
  for (const auto& [key, values] : axes) {
    std::vector<std::vector<std::string>> next;
    for (const auto& partial : grid) {
      for (const auto& value : values) {
        auto p = partial;
        p.push_back(absl::StrCat(key, "=", value));
        next.push_back(p);
      }
    }
    grid = next;
  }
  return grid;
}

// The sweep's size, stated before anything is built: six axes of ten
// values were a million runs that hung silently while being planned.
// InvalidArgument (the size said) beyond --max-runs.
absl::Status CheckSize(const AblateOptions& o, const Axes& axes) {
  std::vector<std::string> factors;
  uint64_t runs = static_cast<uint64_t>(std::max(1, o.seeds));
  bool overflow = false;
  for (const auto& [key, values] : axes) {
    factors.push_back(absl::StrCat(values.size(), " (", key, ")"));
    overflow |= runs > (uint64_t{1} << 40) / std::max<size_t>(1, values.size());
    runs *= std::max<size_t>(1, values.size());
  }
  if (o.seeds > 1) factors.push_back(absl::StrCat(o.seeds, " (seeds)"));
  const std::string size =
      overflow ? "more than 10^12 runs" : absl::StrCat(runs, " run(s)", factors.size() > 1 ? ": " : "",
                                                       factors.size() > 1 ? absl::StrJoin(factors, " x ") : "");
  if (overflow || runs > static_cast<uint64_t>(o.max_runs)) {
    return absl::InvalidArgumentError(absl::StrCat("lumpy ablate: the sweep is ", size, ", more than --max-runs ",
                                                   o.max_runs, "; give --max-runs ",
                                                   overflow ? std::string("N") : std::to_string(runs),
                                                   " (or more) to run it"));
  }
  std::cerr << "lumpy ablate: " << size << std::endl;
  return absl::OkStatus();
}

// Grid point i (its KEY=V assignments) on `seed` (a varied runtime.seed is
// its own): its folder's name and everything it runs with; `threads`:
// runtime.threads, where the sweep sets it.
Variant MakeVariant(const AblateOptions& o, const std::vector<std::string>& point, size_t i, int64_t seed,
                    bool varies_seed, std::optional<int> threads) {
  std::vector<std::string> slugs;
  for (const auto& a : point) slugs.push_back(Slug(a.substr(a.find('=') + 1)));
  Variant v;
  v.assignments = point;
  v.seed = seed;
  for (const auto& a : point) {
    if (a.rfind("runtime.seed=", 0) == 0) v.seed = std::strtoll(a.c_str() + 13, nullptr, 10);
  }
  v.name = absl::StrCat(absl::StrFormat("v%02d-", i + 1), absl::StrJoin(slugs, "-"), slugs.empty() ? "" : "-",
                        "seed", v.seed);
  v.overrides = o.sets;
  v.overrides.insert(v.overrides.end(), point.begin(), point.end());
  if (!varies_seed) v.overrides.push_back(absl::StrCat("runtime.seed=", v.seed));
  v.overrides.push_back("telemetry.progress=false");
  if (threads) v.overrides.push_back(absl::StrCat("runtime.threads=", *threads));
  return v;
}

// Every variant (grid point and seed), each loaded as it will run before
// anything runs: InvalidArgument naming the variant that does not load.
absl::StatusOr<std::vector<Variant>> PlanVariants(const AblateOptions& o, const Axes& axes,
                                                  const Executor& executor) {
  const std::vector<std::vector<std::string>> grid = Grid(axes);
  Registry registry;
  PluginLoader loader(registry);
  LUMPY_RETURN_IF_ERROR(AsRuntimeError(loader.LoadDefaults()));
  auto base = LoadExperiment(o.experiment, o.sets, loader, registry);
  if (!base.ok()) return AsConfigError(base.status());
  const int64_t base_seed = base->runtime.GetInt("seed");
  bool varies_threads = false, varies_seed = false;
  for (const auto& [key, values] : axes) {
    varies_threads |= key == "runtime.threads";
    varies_seed |= key == "runtime.seed";
  }
  for (const auto& s : o.sets) varies_threads |= s.rfind("runtime.threads=", 0) == 0;
  // A varied runtime.seed is the seed axis itself: --seeds would override it.
  if (varies_seed && o.seeds > 1) {
    return absl::InvalidArgumentError(absl::StrCat("--vary runtime.seed=... and --seeds ", o.seeds,
                                                   ": give one of them"));
  }
  // The executor's threads per run (cores/jobs here; a Slurm task's come
  // from its allocation), unless the runs set their own.
  const std::optional<int> threads = varies_threads ? std::nullopt : executor.RunThreads();
  std::vector<Variant> variants;
  for (size_t i = 0; i < grid.size(); ++i) {
    for (int s = 0; s < o.seeds; ++s) {
      Variant v = MakeVariant(o, grid[i], i, base_seed + s, varies_seed, threads);
      auto exp = LoadExperiment(o.experiment, v.overrides, loader, registry);
      if (!exp.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--vary ", absl::StrJoin(grid[i], " "), ": ", exp.status().message()));
      }
      variants.push_back(v);
    }
  }
  return variants;
}

// The sweep: every variant, validated before anything runs.
absl::StatusOr<Sweep> PlanSweep(const AblateOptions& o, const Executor& executor) {
  LUMPY_ASSIGN_OR_RETURN(const Axes axes, ParseAxes(o.varies));
  LUMPY_RETURN_IF_ERROR(CheckSize(o, axes));
  Sweep sweep;
  LUMPY_ASSIGN_OR_RETURN(sweep.variants, PlanVariants(o, axes, executor));
  sweep.experiment = fs::absolute(o.experiment).string();
  sweep.varies = o.varies;
  sweep.sets = o.sets;
  sweep.seeds = o.seeds;
  sweep.executor = executor.name();
  sweep.dir = fs::absolute(o.out);
  return sweep;
}

// What a new sweep needs: an experiment, something to vary (or seeds) and a
// new or empty --out; InvalidArgument otherwise.
absl::Status CheckSweepOptions(const AblateOptions& o) {
  if (o.experiment.empty() || (o.varies.empty() && o.seeds < 2) || o.out.empty()) {
    return absl::InvalidArgumentError(
        "lumpy ablate: give EXPERIMENT, --vary KEY=V1,V2,... (or --seeds N alone) and --out DIR (or "
        "--collect DIR); e.g. --vary loss.wec.constraint.plugin=linear,augmented_lagrangian");
  }
  if (fs::exists(o.out) && !fs::is_directory(o.out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--out ", o.out, ": exists and is not a folder; give a new or empty folder"));
  }
  if (fs::exists(o.out) && !fs::is_empty(o.out)) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.out, ": exists and is not empty; choose another --out (runs are never overwritten)"));
  }
  return absl::OkStatus();
}

// A new sweep planned, its folder made ready by the executor (a Slurm job
// array submitted) and described in OUT/sweep.json.
absl::StatusOr<Sweep> StartSweep(const AblateOptions& o, Executor& executor) {
  LUMPY_RETURN_IF_ERROR(CheckSweepOptions(o));
  LUMPY_ASSIGN_OR_RETURN(Sweep sweep, PlanSweep(o, executor));
  LUMPY_RETURN_IF_ERROR(executor.Prepare(&sweep));
  LUMPY_RETURN_IF_ERROR(
      AsRuntimeError(WriteAtomically(sweep.dir / "sweep.json", SweepToJson(sweep).dump(2) + "\n")));
  return sweep;
}

// --collect DIR: the table of the sweep in DIR from whatever finished, its
// tasks' states as its executor tells them; returns how many finished runs
// failed. A folder that is not a sweep is a configuration error.
absl::StatusOr<int> CollectSweep(const AblateOptions& o) {
  absl::StatusOr<Sweep> sweep = ReadSweep(o.collect);
  if (!sweep.ok()) return AsConfigError(sweep.status());
  LUMPY_ASSIGN_OR_RETURN(std::unique_ptr<Executor> executor, MakeExecutor(sweep->executor, o));
  return WriteAblationTable(*sweep, executor->Collect(*sweep));
}

}  // namespace

// The command's edge: every failure's message is printed here and becomes
// the exit status here.
int RunAblation(const AblateOptions& o) {
  if (!o.collect.empty()) {
    const absl::StatusOr<int> failures = CollectSweep(o);
    if (!failures.ok()) return ExitStatus(failures.status());
    return *failures > 0 ? kExitRuntime : kExitOk;
  }
  absl::StatusOr<std::unique_ptr<Executor>> executor = MakeExecutor(o.executor, o);
  if (!executor.ok()) return ExitStatus(executor.status());
  const absl::StatusOr<Sweep> sweep = StartSweep(o, **executor);
  if (!sweep.ok()) return ExitStatus(sweep.status());
  const SweepOutcome outcome = (*executor)->Run(*sweep);
  if (!outcome.states) return kExitOk;  // not waited for: --collect builds the table
  const absl::StatusOr<int> failures = WriteAblationTable(*sweep, *outcome.states);
  const int rc = !failures.ok() ? ExitStatus(failures.status()) : *failures > 0 ? kExitRuntime : kExitOk;
  if (outcome.stopped_by == 0) return rc;
  std::cerr << "lumpy ablate: stopped by " << strsignal(outcome.stopped_by)
            << ": a stopped run resumes with lumpy resume " << (sweep->dir / "VARIANT").string()
            << "; the table marks it and the runs never started as not finished" << std::endl;
  return 128 + outcome.stopped_by;
}

}  // namespace lumpy
