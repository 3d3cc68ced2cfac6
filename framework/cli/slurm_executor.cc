#include "cli/slurm_executor.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/exit_status.h"
#include "core/atomic_file.h"
#include "core/executable.h"
#include "core/input_file.h"
#include "lumpy/status_macros.h"

extern char** environ;

namespace lumpy {

namespace fs = std::filesystem;

namespace {

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

// The sweep's folder and the slurm options as sweep.sbatch will hold them,
// and sbatch and squeue on the PATH; InvalidArgument otherwise.
absl::Status CheckSubmittable(const Sweep& sweep, const AblateOptions::Slurm& o) {
  if (sweep.dir.string().find_first_of(" \t\n%") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--out ", sweep.dir.string(),
                                                   ": a Slurm sweep folder may not contain blanks or '%' "
                                                   "(sbatch reads them in #SBATCH --output)"));
  }
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--partition", o.partition}, {"--time", o.time}, {"--mem", o.mem}, {"--account", o.account},
           {"--qos", o.qos}}) {
    if (!FitsOnAScriptLine(value)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": a line break cannot go into sweep.sbatch's #SBATCH lines"));
    }
  }
  for (const auto& a : o.sbatch_args) {
    if (!FitsOnAScriptLine(a)) {
      return absl::InvalidArgumentError("--sbatch-arg: a line break cannot go into sweep.sbatch's #SBATCH lines");
    }
  }
  if (!OnPath("sbatch") || !OnPath("squeue")) {
    return absl::InvalidArgumentError(
        "--executor slurm: no sbatch or squeue on the PATH (is this a Slurm login node? Debian: "
        "apt-get install slurm-client)");
  }
  return absl::OkStatus();
}

// Submits the sweep's job array, setting sweep->job_id; an error: nothing
// was submitted (InvalidArgument: the options, or sbatch refused them).
absl::Status SubmitSlurm(Sweep* sweep, const AblateOptions::Slurm& o) {
  LUMPY_RETURN_IF_ERROR(CheckSubmittable(*sweep, o));
  std::error_code ec;
  fs::create_directories(sweep->dir / "logs", ec);
  if (ec) return absl::UnavailableError(absl::StrCat(sweep->dir.string(), ": cannot create: ", ec.message()));
  const fs::path script = sweep->dir / "sweep.sbatch";
  LUMPY_RETURN_IF_ERROR(AsRuntimeError(WriteAtomically(script, SbatchScript(*sweep, o))));
  std::string out;
  const int rc = Capture({"sbatch", "--parsable", script.string()}, &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (rc != 0) {
    fs::remove_all(sweep->dir, ec);
    return absl::InvalidArgumentError(absl::StrCat("sbatch refused the sweep (nothing was submitted): ", out));
  }
  sweep->job_id = out.substr(0, out.find(';'));
  std::cerr << "lumpy ablate: submitted job array " << sweep->job_id << " (" << sweep->variants.size()
            << " task(s)) -> " << sweep->dir.string() << std::endl;
  return absl::OkStatus();
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

}  // namespace

SlurmExecutor::SlurmExecutor(AblateOptions::Slurm options) : options_(std::move(options)) {}

absl::Status SlurmExecutor::Prepare(Sweep* sweep) { return SubmitSlurm(sweep, options_); }

SweepOutcome SlurmExecutor::Run(const Sweep& sweep) {
  SweepOutcome outcome;
  if (!options_.wait) {
    std::cout << sweep.job_id << std::endl;
    std::cerr << "not waiting: lumpy ablate --collect " << sweep.dir.string() << " builds the table from what finished"
              << std::endl;
    return outcome;
  }
  outcome.states = WaitSlurm(sweep, options_.poll_seconds);
  return outcome;
}

std::vector<TaskState> SlurmExecutor::Collect(const Sweep& sweep) const {
  bool queue_ok = false;
  std::vector<TaskState> states = SlurmStates(sweep, &queue_ok);
  if (!queue_ok) std::cerr << "warning: squeue did not answer: tasks without an exit file are marked pending" << std::endl;
  return states;
}

}  // namespace lumpy
