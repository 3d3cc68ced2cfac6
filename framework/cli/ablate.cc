#include "cli/ablate.h"
#include "cli/figures.h"
#include "cli/markdown.h"
#include "cli/run_folder.h"
#include "cli/sweep_file.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/executable.h"
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <chrono>
#include <cstdlib>
#include <csignal>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/status/statusor.h"
#include "config/experiment.h"
#include "core/atomic_file.h"
#include "core/input_file.h"
#include "lumpy/status_macros.h"
#include "loader/plugin_loader.h"
#include "train/checkpoint.h"
#include "train/stop_signals.h"

extern char** environ;

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

// Runs `lumpy run` for one variant, output to its log; returns the pid.
pid_t Spawn(const fs::path& exe, const std::string& experiment, const Variant& v, const fs::path& dir) {
  std::vector<std::string> args = {exe.string(), "run", experiment};
  for (const auto& o : v.overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  args.push_back("--out");
  args.push_back((dir / v.name).string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = (dir / (v.name + ".log")).string();
  ::unlink(log.c_str());  // ours anew: never written through a planted link
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  // Each run in its own process group: a signal meant for the sweep reaches
  // ablate alone, which passes it on once to every run (RunLocal). Ctrl-C
  // sent to the terminal's group would otherwise reach a run twice, and a
  // second signal ends a run without its checkpoint.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  if (posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), environ) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// A run or sweep folder's own file as JSON (discarded: missing, not a
// regular file, over the limit or not JSON).
nlohmann::json ReadRunJson(const fs::path& file) {
  auto text = ReadInputFile(file, InputKind::kRunFile, "run file");
  if (!text.ok()) return nlohmann::json::value_t::discarded;
  return nlohmann::json::parse(*text, nullptr, false);
}

}  // namespace

namespace {

constexpr int kConfig = 2, kRuntime = 1;

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

// Every variant, validated before anything runs. 0 or an exit status.
// --vary KEY=V1,V2,... as (KEY, [V1, V2, ...]) axes; false (with the
// message printed) for a malformed one.
using Axes = std::vector<std::pair<std::string, std::vector<std::string>>>;
bool ParseAxes(const std::vector<std::string>& varies, Axes* axes) {
  for (const auto& v : varies) {
    const size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      std::cerr << "--vary " << v << ": expected KEY=V1,V2,... e.g. --vary optimizer.lr=1e-4,1e-3" << std::endl;
      return false;
    }
    axes->push_back({v.substr(0, eq), SplitValues(v.substr(eq + 1))});
  }
  return true;
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

int PlanSweep(const AblateOptions& o, Sweep* sweep) {
  if (o.varies.empty() && o.seeds < 2) {
    std::cerr << "--vary: give at least one, e.g. --vary loss.wec.constraint.plugin=linear,augmented_lagrangian "
                 "(or --seeds N for the experiment itself on N seeds)"
              << std::endl;
    return kConfig;
  }
  Axes axes;
  if (!ParseAxes(o.varies, &axes)) return kConfig;
  // The sweep's size, stated before anything is built: six axes of ten
  // values were a million runs that hung silently while being planned.
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
    std::cerr << "lumpy ablate: the sweep is " << size << ", more than --max-runs " << o.max_runs
              << "; give --max-runs " << (overflow ? std::string("N") : std::to_string(runs))
              << " (or more) to run it" << std::endl;
    return kConfig;
  }
  std::cerr << "lumpy ablate: " << size << std::endl;
  const std::vector<std::vector<std::string>> grid = Grid(axes);
  // Validate every variant before anything runs.
  Registry registry;
  PluginLoader loader(registry);
  if (auto st = loader.LoadDefaults(); !st.ok()) {
    std::cerr << st.message() << std::endl;
    return kRuntime;
  }
  auto base = LoadExperiment(o.experiment, o.sets, loader, registry);
  if (!base.ok()) {
    std::cerr << base.status().message() << std::endl;
    return kConfig;
  }
  const int64_t base_seed = base->runtime.GetInt("seed");
  bool varies_threads = false;
  for (const auto& [key, values] : axes) varies_threads |= key == "runtime.threads";
  for (const auto& s : o.sets) varies_threads |= s.rfind("runtime.threads=", 0) == 0;
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, cores / std::max(1, o.jobs));
  const bool slurm = o.executor == "slurm";  // threads come from the allocation
  // A varied runtime.seed is the seed axis itself: --seeds would override it.
  bool varies_seed = false;
  for (const auto& [key, values] : axes) varies_seed |= key == "runtime.seed";
  if (varies_seed && o.seeds > 1) {
    std::cerr << "--vary runtime.seed=... and --seeds " << o.seeds << ": give one of them" << std::endl;
    return kConfig;
  }
  for (size_t i = 0; i < grid.size(); ++i) {
    std::vector<std::string> slugs;
    for (const auto& a : grid[i]) slugs.push_back(Slug(a.substr(a.find('=') + 1)));
    for (int s = 0; s < o.seeds; ++s) {
      Variant v;
      v.assignments = grid[i];
      v.seed = base_seed + s;
      for (const auto& a : grid[i]) {
        if (a.rfind("runtime.seed=", 0) == 0) v.seed = std::strtoll(a.c_str() + 13, nullptr, 10);
      }
      v.name = absl::StrCat(absl::StrFormat("v%02d-", i + 1), absl::StrJoin(slugs, "-"), slugs.empty() ? "" : "-",
                            "seed", v.seed);
      v.overrides = o.sets;
      v.overrides.insert(v.overrides.end(), grid[i].begin(), grid[i].end());
      if (!varies_seed) v.overrides.push_back(absl::StrCat("runtime.seed=", v.seed));
      v.overrides.push_back("telemetry.progress=false");
      if (!varies_threads && !slurm) v.overrides.push_back(absl::StrCat("runtime.threads=", threads));
      auto exp = LoadExperiment(o.experiment, v.overrides, loader, registry);
      if (!exp.ok()) {
        std::cerr << "--vary " << absl::StrJoin(grid[i], " ") << ": " << exp.status().message() << std::endl;
        return kConfig;
      }
      sweep->variants.push_back(v);
    }
  }
  sweep->experiment = fs::absolute(o.experiment).string();
  sweep->varies = o.varies;
  sweep->sets = o.sets;
  sweep->seeds = o.seeds;
  sweep->executor = o.executor;
  sweep->dir = fs::absolute(o.out);
  return 0;
}

// What became of one task: pending, running, interrupted (stopped by a
// signal, resumable), or done with an exit code.
struct TaskState {
  std::string state = "done";
  int exit_code = -1;
};

// Runs the variants here, `jobs` at a time. SIGINT, SIGTERM or SIGHUP sent
// to ablate is passed on once to every running run (each checkpoints and
// stops as `lumpy run` does on it); no other run is started, those left are
// marked pending, and the sweep waits for the running ones before its table.
// A second signal ends ablate at once (the runs already have theirs).
std::vector<TaskState> RunLocal(const Sweep& sweep, int jobs, int* stopped_by) {
  const fs::path exe(LumpyExecutable().string());
  const auto& variants = sweep.variants;
  std::map<pid_t, size_t> running;
  std::vector<TaskState> states(variants.size());
  StopSignals signals;
  int forwarded = 0;
  size_t next = 0, done = 0;
  while (done < variants.size()) {
    const int sig = signals.received();
    if (sig != 0 && forwarded == 0) {
      forwarded = sig;
      for (const auto& [pid, i] : running) ::kill(pid, sig);
      std::cerr << "lumpy ablate: " << strsignal(sig) << ": asked " << running.size()
                << " running run(s) to checkpoint and stop; " << variants.size() - next
                << " not started" << std::endl;
      for (size_t i = next; i < variants.size(); ++i) states[i].state = "pending";
      done += variants.size() - next;
      next = variants.size();
    }
    while (forwarded == 0 && next < variants.size() && static_cast<int>(running.size()) < std::max(1, jobs)) {
      pid_t pid = Spawn(exe, sweep.experiment, variants[next], sweep.dir);
      if (pid < 0) {
        states[next].exit_code = 127;
        ++done;
      } else {
        running[pid] = next;
        std::cerr << "  started " << variants[next].name << std::endl;
      }
      ++next;
    }
    if (running.empty()) continue;
    int status = 0;
    // Polled, so a signal is seen while runs are going (waitpid restarts).
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    states[it->second].exit_code = code;
    // A run that stopped on the signal passed on is resumable, not failed;
    // one killed by it before it had a summary was never really started. Any
    // other end without a summary is a failure.
    const std::string run_status =
        forwarded != 0 ? SummaryString(ReadRunJson(sweep.dir / variants[it->second].name / "summary.json"), "status")
                       : "";
    const bool killed_by_it = WIFSIGNALED(status) && WTERMSIG(status) == forwarded;
    const bool interrupted = forwarded != 0 && (run_status == "interrupted" || (run_status.empty() && killed_by_it));
    if (interrupted) states[it->second].state = run_status.empty() ? "pending" : "interrupted";
    std::cerr << "  " << (interrupted ? "stopped  " : code == 0 ? "finished " : "FAILED   ") << variants[it->second].name
              << " (" << ++done << "/" << variants.size() << ")" << std::endl;
    running.erase(it);
  }
  *stopped_by = forwarded;
  return states;
}

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// OUT/sweep.sbatch: one array task per variant and seed. A task runs its
// variant, or resumes it if its folder holds a checkpoint (a requeued task),
// or does nothing if it already completed. On Slurm's warning signal (USR1,
// warn_seconds before the time limit) it stops the run (which checkpoints)
// and requeues itself. Its exit status goes to OUT/<variant>.exit.
std::string SbatchScript(const Sweep& sweep, const AblateOptions::Slurm& o) {
  const fs::path exe(LumpyExecutable().string());
  std::string s = "#!/bin/bash\n# Written by lumpy ablate; submit with: sbatch sweep.sbatch\n";
  absl::StrAppend(&s, "#SBATCH --job-name=lumpy-ablate\n", "#SBATCH --array=0-", sweep.variants.size() - 1, "\n",
                  "#SBATCH --output=", (sweep.dir / "logs" / "%A_%a.out").string(), "\n",
                  "#SBATCH --cpus-per-task=", o.cpus_per_task, "\n", "#SBATCH --requeue\n",
                  "#SBATCH --open-mode=append\n", "#SBATCH --signal=B:USR1@", o.warn_seconds, "\n");
  auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) absl::StrAppend(&s, "#SBATCH --", flag, "=", v, "\n");
  };
  add("partition", o.partition);
  add("time", o.time);
  add("mem", o.mem);
  add("account", o.account);
  add("qos", o.qos);
  for (const auto& a : o.sbatch_args) absl::StrAppend(&s, "#SBATCH ", a, "\n");
  absl::StrAppend(&s, "\nset -u\nLUMPY=", ShellQuote(exe.string()), "\nDIR=", ShellQuote(sweep.dir.string()),
                  "\nEXPERIMENT=", ShellQuote(sweep.experiment), "\n\ncase \"$SLURM_ARRAY_TASK_ID\" in\n");
  for (size_t i = 0; i < sweep.variants.size(); ++i) {
    const auto& v = sweep.variants[i];
    absl::StrAppend(&s, "  ", i, ") NAME=", ShellQuote(v.name), "; SETS=(");
    for (const auto& ov : v.overrides) absl::StrAppend(&s, " --set ", ShellQuote(ov));
    absl::StrAppend(&s, " ) ;;\n");
  }
  absl::StrAppend(&s, R"SH(  *) echo "no variant for task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
RUN="$DIR/$NAME"
if [ -f "$RUN/summary.json" ] && grep -qE '"status": "(completed|stopped)"' "$RUN/summary.json"; then
  echo 0 > "$DIR/$NAME.exit"; exit 0
fi
if [ -f "$RUN/checkpoints/latest.pt" ]; then
  echo "task $SLURM_ARRAY_TASK_ID: resuming $RUN" >&2
  "$LUMPY" resume "$RUN" >> "$DIR/$NAME.log" 2>&1 &
else
  # Killed before its first checkpoint: start again, the partial folder kept aside.
  [ -e "$RUN" ] && mv "$RUN" "$RUN.partial.${SLURM_RESTART_COUNT:-0}.$$"
  "$LUMPY" run "$EXPERIMENT" --set "runtime.threads=${SLURM_CPUS_PER_TASK:-1}" "${SETS[@]}" --out "$RUN" > "$DIR/$NAME.log" 2>&1 &
fi
pid=$!
requeue=0
trap 'requeue=1; kill -TERM $pid 2>/dev/null' USR1
wait $pid; rc=$?
while kill -0 $pid 2>/dev/null; do wait $pid; rc=$?; done
if [ $requeue = 1 ]; then
  echo "task $SLURM_ARRAY_TASK_ID: checkpointed before the time limit; requeued" >&2
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
  exit 0
fi
echo $rc > "$DIR/$NAME.exit"
exit $rc
)SH");
  return s;
}

// Runs a program with an argument vector (never a shell: no text from a
// file or an option is ever parsed as a command line), returning its exit
// status and what it printed (standard output; with `merge`, standard error
// too, else standard error is dropped).
int Capture(const std::vector<std::string>& command, std::string* out, bool merge = true) {
  out->clear();
  int fds[2];
  if (command.empty() || ::pipe(fds) != 0) return 127;
  std::vector<std::string> args = command;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  if (merge) {
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return 127;
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && out->size() < (size_t{1} << 24)) out->append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Whether PATH names an executable `program` (what `command -v` says, without a shell).
bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  for (const auto dir : absl::StrSplit(path ? path : "", ':', absl::SkipEmpty())) {
    if (::access((fs::path(std::string(dir)) / program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// A value that goes on a line of its own in sweep.sbatch (#SBATCH --key=value),
// where nothing can be quoted: refused if it holds a line break or a NUL.
bool FitsOnAScriptLine(const std::string& value) {
  return value.find_first_of(std::string("\n\r\0", 3)) == std::string::npos;
}

// Each task's state: pending or running while squeue lists it, else done
// with the exit status its script wrote (a task that ended without writing
// one failed before or outside its run, e.g. cancelled).
std::vector<TaskState> SlurmStates(const Sweep& sweep, bool* queue_ok) {
  std::vector<TaskState> states(sweep.variants.size());
  std::string out;
  // Slurm forgets a job MinJobAge after its last task ended: squeue -j then
  // fails ("Invalid job id specified"), which means nothing is queued.
  const int rc = Capture({"squeue", "-h", "-r", "-j", sweep.job_id, "-o", "%K %T"}, &out, /*merge=*/false);
  std::string why;
  *queue_ok = rc == 0 || (Capture({"squeue", "-h", "-j", sweep.job_id}, &why) != 0 &&
                          why.find("Invalid job id") != std::string::npos);
  if (rc != 0) out.clear();
  std::map<size_t, std::string> listed;
  if (*queue_ok) {
    std::istringstream in(out);
    std::string task, state;
    while (in >> task >> state) {
      char* end = nullptr;
      const unsigned long i = std::strtoul(task.c_str(), &end, 10);
      if (*end == 0 && i < states.size()) listed[i] = state;
    }
  }
  for (size_t i = 0; i < states.size(); ++i) {
    auto exit_text = ReadInputFile(sweep.dir / (sweep.variants[i].name + ".exit"), InputKind::kRunFile, "exit file");
    std::istringstream exit_file(exit_text.ok() ? *exit_text : "");
    int code = -1;
    if (listed.count(i)) {
      const std::string& st = listed[i];
      states[i].state = st == "PENDING" || st == "REQUEUED" || st == "REQUEUE_HOLD" || st == "REQUEUE_FED" ? "pending" : "running";
    } else if (exit_file >> code) {
      states[i].exit_code = code;
    } else if (!*queue_ok) {
      states[i].state = "pending";  // the queue could not be asked: nothing is known
    }
  }
  return states;
}

// Submits the sweep's job array; 0 or an exit status (nothing submitted).
int SubmitSlurm(Sweep* sweep, const AblateOptions::Slurm& o) {
  if (sweep->dir.string().find_first_of(" \t\n%") != std::string::npos) {
    std::cerr << "--out " << sweep->dir.string() << ": a Slurm sweep folder may not contain blanks or '%' "
                 "(sbatch reads them in #SBATCH --output)" << std::endl;
    return kConfig;
  }
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--partition", o.partition}, {"--time", o.time}, {"--mem", o.mem}, {"--account", o.account},
           {"--qos", o.qos}}) {
    if (!FitsOnAScriptLine(value)) {
      std::cerr << flag << ": a line break cannot go into sweep.sbatch's #SBATCH lines" << std::endl;
      return kConfig;
    }
  }
  for (const auto& a : o.sbatch_args) {
    if (!FitsOnAScriptLine(a)) {
      std::cerr << "--sbatch-arg: a line break cannot go into sweep.sbatch's #SBATCH lines" << std::endl;
      return kConfig;
    }
  }
  if (!OnPath("sbatch") || !OnPath("squeue")) {
    std::cerr << "--executor slurm: no sbatch or squeue on the PATH (is this a Slurm login node? Debian: "
                 "apt-get install slurm-client)" << std::endl;
    return kConfig;
  }
  std::error_code ec;
  fs::create_directories(sweep->dir / "logs", ec);
  if (ec) {
    std::cerr << sweep->dir.string() << ": cannot create: " << ec.message() << std::endl;
    return kRuntime;
  }
  const fs::path script = sweep->dir / "sweep.sbatch";
  if (auto st = WriteAtomically(script, SbatchScript(*sweep, o)); !st.ok()) {
    std::cerr << st.message() << std::endl;
    return kRuntime;
  }
  std::string out;
  const int rc = Capture({"sbatch", "--parsable", script.string()}, &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (rc != 0) {
    std::cerr << "sbatch refused the sweep (nothing was submitted): " << out << std::endl;
    fs::remove_all(sweep->dir, ec);
    return kConfig;
  }
  sweep->job_id = out.substr(0, out.find(';'));
  std::cerr << "lumpy ablate: submitted job array " << sweep->job_id << " (" << sweep->variants.size()
            << " task(s)) -> " << sweep->dir.string() << std::endl;
  return 0;
}

// Polls until no task is pending or running, with a progress line.
std::vector<TaskState> WaitSlurm(const Sweep& sweep, double poll_seconds) {
  std::string last;
  for (;;) {
    bool queue_ok = false;
    auto states = SlurmStates(sweep, &queue_ok);
    int pending = 0, running = 0, done = 0, failed = 0;
    for (const auto& s : states) {
      pending += s.state == "pending";
      running += s.state == "running";
      done += s.state == "done" && s.exit_code == 0;
      failed += s.state == "done" && s.exit_code != 0;
    }
    const std::string line = absl::StrFormat("  job %s: %d pending, %d running, %d done, %d failed%s", sweep.job_id,
                                             pending, running, done, failed, queue_ok ? "" : " (squeue failed)");
    if (line != last) std::cerr << line << std::endl;
    last = line;
    if (queue_ok && pending + running == 0) return states;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(poll_seconds * 1000)));
  }
}


// The table's contents: a header (fixed columns, then every loss term's
// final value) and one row per variant.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int failures = 0, pending = 0;
};

Table CollectTable(const Sweep& sweep, const std::vector<TaskState>& states) {
  const auto& variants = sweep.variants;
  std::vector<nlohmann::json> summaries(variants.size());
  std::set<std::string> term_names;
  std::vector<std::string> handler_columns;
  for (size_t i = 0; i < variants.size(); ++i) {
    summaries[i] = ReadRunJson(sweep.dir / variants[i].name / "summary.json");
    for (const auto& name : SummaryTermNames(summaries[i])) term_names.insert(name);
    for (const auto& c : SummaryHandlerColumns(summaries[i])) {
      if (std::find(handler_columns.begin(), handler_columns.end(), c) == handler_columns.end()) {
        handler_columns.push_back(c);
      }
    }
  }
  Table t;
  t.header = {"variant", "seed", "status", "steps", "wall_time_s", "loss"};
  for (const auto& name : term_names) t.header.push_back(name);
  // The handlers' final state (a multiplier, a penalty weight, an adaptive
  // weight: each handler's own columns), after the terms.
  for (const auto& c : handler_columns) {
    if (!term_names.count(c)) t.header.push_back(c);
  }
  for (const char* c : {"held_out_max_violation", "held_out_worst_constraint", "held_out_ricci_min",
                        "omega_m", "H_mean_today", "shear_sq_today", "error"}) {
    t.header.push_back(c);
  }
  auto unfinished_state = [](const TaskState& st) {
    return st.state == "pending" || st.state == "running" || st.state == "interrupted";
  };
  for (const auto& st : states) t.pending += unfinished_state(st);
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& s = summaries[i];
    std::map<std::string, std::string> cell;
    cell["variant"] = absl::StrJoin(variants[i].assignments, " ");
    cell["seed"] = absl::StrCat(variants[i].seed);
    const TaskState& state = states[i];
    const bool unfinished = unfinished_state(state);
    const bool ok = !unfinished && state.exit_code == 0 && s.is_object();
    t.failures += !ok && !unfinished;
    cell["status"] = unfinished ? state.state : !SummaryString(s, "status").empty() ? SummaryString(s, "status") : "failed";
    if (!ok && !unfinished) {
      if (!SummaryString(s, "error").empty()) {
        cell["error"] = SummaryString(s, "error");
      } else {  // no summary to say why: the log's last line does
        const auto last = LastLogLines(sweep.dir / (variants[i].name + ".log"), 1);
        cell["error"] = last.empty() ? std::string() : last[0];
      }
    }
    if (s.is_object() && !unfinished) SummaryCells(s, term_names, handler_columns, &cell);
    std::vector<std::string> row;
    for (const auto& h : t.header) row.push_back(cell[h]);
    t.rows.push_back(row);
  }
  return t;
}

absl::Status WriteCsvTable(const fs::path& path, const Table& t) {
  auto csv_field = [](const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
    return q + "\"";
  };
  std::ostringstream csv;
  for (size_t j = 0; j < t.header.size(); ++j) csv << (j ? "," : "") << t.header[j];
  csv << "\n";
  for (const auto& r : t.rows) {
    for (size_t j = 0; j < r.size(); ++j) csv << (j ? "," : "") << csv_field(r[j]);
    csv << "\n";
  }
  return WriteAtomically(path, csv.str());
}

// Over seeds: per variant run on more than one seed, each numeric column's
// mean ± sample standard deviation over its finished runs (n of them), as a
// markdown table; "" when no variant has two finished seeds.
std::string SeedSummary(const Table& t) {
  const auto col = [&](const std::string& name) {
    return std::find(t.header.begin(), t.header.end(), name) - t.header.begin();
  };
  const size_t variant = col("variant"), status = col("status");
  std::vector<std::string> order;
  std::map<std::string, std::vector<const std::vector<std::string>*>> runs;
  for (const auto& r : t.rows) {
    if (r[status] != "completed" && r[status] != "stopped") continue;
    if (!runs.count(r[variant])) order.push_back(r[variant]);
    runs[r[variant]].push_back(&r);
  }
  bool any = false;
  for (const auto& [v, rs] : runs) any |= rs.size() > 1;
  if (!any) return "";
  std::vector<size_t> numeric;
  const std::set<std::string> skip = {"variant", "seed", "status", "held_out_worst_constraint", "error"};
  for (size_t j = 0; j < t.header.size(); ++j) {
    if (!skip.count(t.header[j])) numeric.push_back(j);
  }
  std::ostringstream md;
  md << "\n## Over seeds (mean ± standard deviation over the finished runs)\n\n| variant | n |";
  for (size_t j : numeric) md << " " << t.header[j] << " |";
  md << "\n| --- | --- |";
  for (size_t j = 0; j < numeric.size(); ++j) md << " --- |";
  md << "\n";
  for (const auto& v : order) {
    const auto& rs = runs[v];
    md << "| " << MarkdownCell(v) << " | " << rs.size() << " |";
    for (size_t j : numeric) {
      std::vector<double> x;
      for (const auto* r : rs) {
        char* end = nullptr;
        const std::string& cell = (*r)[j];
        const double value = std::strtod(cell.c_str(), &end);
        if (!cell.empty() && end != nullptr && *end == '\0' && std::isfinite(value)) x.push_back(value);
      }
      if (x.empty()) {
        md << " |";
        continue;
      }
      double mean = 0;
      for (double value : x) mean += value / static_cast<double>(x.size());
      double ss = 0;
      for (double value : x) ss += (value - mean) * (value - mean);
      md << " " << absl::StrFormat("%.4g", mean);
      if (x.size() > 1) md << absl::StrFormat(" ± %.2g", std::sqrt(ss / static_cast<double>(x.size() - 1)));
      if (x.size() != rs.size()) md << " (n=" << x.size() << ")";
      md << " |";
    }
    md << "\n";
  }
  return md.str();
}

absl::Status WriteMarkdownTable(const fs::path& path, const Sweep& sweep, const Table& t) {
  std::ostringstream md;
  md << "# Ablation of " << sweep.experiment << "\n\n";
  md << "Varied: " << absl::StrJoin(sweep.varies, "; ") << "; seeds: " << sweep.seeds
     << "; executor: " << sweep.executor << (sweep.job_id.empty() ? "" : " (job " + sweep.job_id + ")")
     << ". One run folder per row under this folder (`<variant>/`, log `<variant>.log`).\n"
     << "Loss terms are their final values as configured (a supernova term with the reference "
        "reduction is chi^2 per supernova); held-out values are on the grid of [certify]; "
        "H_mean and shear today at the observer (1,0,0,0).\n\n";
  md << "| " << absl::StrJoin(t.header, " | ") << " |\n|";
  for (size_t j = 0; j < t.header.size(); ++j) md << " --- |";
  md << "\n";
  for (const auto& r : t.rows) {
    std::vector<std::string> cells;
    for (const auto& v : r) cells.push_back(MarkdownCell(v));
    md << "| " << absl::StrJoin(cells, " | ") << " |\n";
  }
  md << SeedSummary(t);
  md << "\n![ablation](ablation.png)\n";
  return WriteAtomically(path, md.str());
}

// The table (ablation.csv, ablation.md) and its figure. Exit status: 1 if a
// finished run failed.
int WriteTable(const Sweep& sweep, const std::vector<TaskState>& states) {
  const fs::path& dir = sweep.dir;
  const Table t = CollectTable(sweep, states);
  for (const auto& st : {WriteCsvTable(dir / "ablation.csv", t), WriteMarkdownTable(dir / "ablation.md", sweep, t)}) {
    if (!st.ok()) {
      std::cerr << "lumpy ablate: " << st.message() << std::endl;
      return 1;
    }
  }
  // The figure, if Python's matplotlib is there.
  std::string why;
  if (!RunFigureScript("ablation_figure.py", {(dir / "ablation.csv").string(), (dir / "ablation.png").string()},
                       &why)) {
    std::cerr << "warning: no figure: " << why << std::endl;
  }
  std::cerr << "table: " << (dir / "ablation.md").string() << ", " << (dir / "ablation.csv").string()
            << (t.failures ? absl::StrCat("; ", t.failures, " run(s) failed (see the error column)") : "")
            << (t.pending ? absl::StrCat("; ", t.pending, " not finished yet (lumpy ablate --collect ", dir.string(),
                                          " later)")
                          : "")
            << std::endl;
  return t.failures ? 1 : 0;
}

}  // namespace

int RunAblation(const AblateOptions& o) {
  if (!o.collect.empty()) {
    auto sweep = ReadSweep(o.collect);
    if (!sweep.ok()) {
      std::cerr << sweep.status().message() << std::endl;
      return kConfig;
    }
    std::vector<TaskState> states(sweep->variants.size());
    if (sweep->executor == "slurm") {
      bool queue_ok = false;
      states = SlurmStates(*sweep, &queue_ok);
      if (!queue_ok) std::cerr << "warning: squeue did not answer: tasks without an exit file are marked pending" << std::endl;
    } else {
      for (size_t i = 0; i < states.size(); ++i) {
        const std::string status =
            SummaryString(ReadRunJson(sweep->dir / sweep->variants[i].name / "summary.json"), "status");
        states[i].exit_code = status == "completed" || status == "stopped" ? 0 : 1;
        // Stopped by a signal (resumable) or never started (no folder): not
        // finished, not failed. A folder without a summary is a run that died.
        if (status == "interrupted") states[i].state = "interrupted";
        // (Spawn always creates the log: a variant with a log was started.)
        const fs::path log = sweep->dir / (sweep->variants[i].name + ".log");
        std::error_code ec;
        const auto log_size = fs::file_size(log, ec);
        const bool started = fs::exists(sweep->dir / sweep->variants[i].name) || (!ec && log_size > 0);
        if (status.empty() && !started) states[i].state = "pending";
      }
    }
    return WriteTable(*sweep, states);
  }
  if (o.experiment.empty() || (o.varies.empty() && o.seeds < 2) || o.out.empty()) {
    std::cerr << "lumpy ablate: give EXPERIMENT, --vary KEY=V1,V2,... (or --seeds N alone) and --out DIR (or "
                 "--collect DIR); e.g. --vary loss.wec.constraint.plugin=linear,augmented_lagrangian" << std::endl;
    return kConfig;
  }
  if (fs::exists(o.out) && !fs::is_directory(o.out)) {
    std::cerr << "--out " << o.out << ": exists and is not a folder; give a new or empty folder" << std::endl;
    return kConfig;
  }
  if (fs::exists(o.out) && !fs::is_empty(o.out)) {
    std::cerr << o.out << ": exists and is not empty; choose another --out (runs are never overwritten)" << std::endl;
    return kConfig;
  }
  Sweep sweep;
  if (int rc = PlanSweep(o, &sweep)) return rc;
  if (o.executor == "slurm") {
    if (int rc = SubmitSlurm(&sweep, o.slurm)) return rc;
  } else {
    std::error_code ec;
    fs::create_directories(sweep.dir, ec);
    if (ec) {
      std::cerr << o.out << ": cannot create: " << ec.message() << std::endl;
      return kRuntime;
    }
  }
  if (auto st = WriteAtomically(sweep.dir / "sweep.json", SweepToJson(sweep).dump(2) + "\n"); !st.ok()) {
    std::cerr << st.message() << std::endl;
    return kRuntime;
  }
  if (o.executor == "slurm") {
    if (!o.slurm.wait) {
      std::cout << sweep.job_id << std::endl;
      std::cerr << "not waiting: lumpy ablate --collect " << sweep.dir.string() << " builds the table from what finished"
                << std::endl;
      return 0;
    }
    return WriteTable(sweep, WaitSlurm(sweep, o.slurm.poll_seconds));
  }
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  std::cerr << "lumpy ablate: " << sweep.variants.size() << " run(s), " << o.jobs << " at a time, "
            << std::max(1, cores / std::max(1, o.jobs)) << " thread(s) each unless set -> " << sweep.dir.string()
            << std::endl;
  int stopped_by = 0;
  auto states = RunLocal(sweep, o.jobs, &stopped_by);
  const int rc = WriteTable(sweep, states);
  if (stopped_by == 0) return rc;
  std::cerr << "lumpy ablate: stopped by " << strsignal(stopped_by) << ": a stopped run resumes with lumpy resume "
            << (sweep.dir / "VARIANT").string() << "; the table marks it and the runs never started as not finished"
            << std::endl;
  return 128 + stopped_by;
}

}  // namespace lumpy
