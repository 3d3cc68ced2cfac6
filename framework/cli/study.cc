#include <torch/torch.h>

#include "cli/study.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/claims.h"
#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "cli/study_file.h"
#include "core/atomic_file.h"
#include "core/executable.h"
#include "core/input_file.h"
#include "lumpy/status_macros.h"
#include "train/checkpoint.h"
#include "train/state.h"

extern char** environ;

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// The text gzip-compressed (the gzip format, so `zcat` and Python's gzip read it).
absl::StatusOr<std::string> Gzip(const std::string& text) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("zlib: deflateInit2 failed");
  }
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return absl::InternalError("zlib: deflate did not finish");
  return out;
}

// The status a run folder's summary.json gives, or "" without one.
std::string SummaryStatus(const fs::path& dir) {
  auto text = ReadInputFile(dir / "summary.json", InputKind::kRunFile, "run summary");
  if (!text.ok()) return "";
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.contains("status") || !j["status"].is_string()) return "";
  return j["status"].get<std::string>();
}

constexpr int kCannotStart = 127;  // as a shell says it

// Runs `lumpy ARGS...` (behind the launcher) with its output in LOG; the exit status.
int RunChild(const std::string& launcher, const std::vector<std::string>& lumpy_args, const fs::path& log) {
  std::vector<std::string> args;
  for (auto part : absl::StrSplit(launcher, ' ', absl::SkipEmpty())) args.emplace_back(part);
  args.push_back(LumpyExecutable().string());
  args.insert(args.end(), lumpy_args.begin(), lumpy_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Appended to (a resumed run's log continues), never through a link.
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::cerr << "study: cannot start " << args[0] << ": " << std::strerror(rc) << std::endl;
    return kCannotStart;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// The metric of a training checkpoint with its physical scalars, in
// model.pt's format (what `lumpy probe`, `report` and the claims read).
absl::Status ExportModel(const fs::path& run, const fs::path& checkpoint, const fs::path& out) {
  LoadedExperiment e;
  LUMPY_RETURN_IF_ERROR(LoadAndBuild(run / "experiment.toml", {"runtime.threads=0"}, &e));
  LUMPY_RETURN_IF_ERROR(LoadMetric(checkpoint, &e));
  torch::serialize::OutputArchive archive;
  e.c.model->save(archive);
  WritePhysicalScalars(PhysicalScalars(e.c), archive);
  WriteModelKind(archive, e.exp->model.entry->name);
  return SaveArchiveAtomically(archive, out, 0);
}

// Copies the files of `from` whose names end in one of `suffixes` into `to`.
absl::Status CopyFiles(const fs::path& from, const fs::path& to, const std::vector<std::string>& suffixes) {
  if (!fs::is_directory(from)) return absl::OkStatus();
  std::error_code ec;
  fs::create_directories(to, ec);
  for (const auto& e : fs::directory_iterator(from)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    for (const auto& s : suffixes) {
      if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        LUMPY_RETURN_IF_ERROR(CopyAtomically(e.path(), to / name));
        break;
      }
    }
  }
  return absl::OkStatus();
}

// A finished run folder into its result folder (study.h says what it holds).
absl::Status Collect(const StudyRun& r, const fs::path& run, const fs::path& result, const fs::path& log,
                     const std::string& launcher) {
  // Anew: nothing of an older collection (figures of another run) stays beside this one's.
  std::error_code ec;
  fs::remove_all(result, ec);
  fs::create_directories(result, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", result.string(), ": ", ec.message()));
  LUMPY_RETURN_IF_ERROR(CopyAtomically(run / "experiment.toml", result / "experiment.toml"));
  LUMPY_ASSIGN_OR_RETURN(auto metrics, ReadInputFile(run / "metrics.csv", InputKind::kMetrics, "metrics table"));
  LUMPY_ASSIGN_OR_RETURN(auto packed, Gzip(metrics));
  LUMPY_RETURN_IF_ERROR(WriteAtomically(result / "metrics.csv.gz", packed));
  if (fs::exists(run / "model.pt")) LUMPY_RETURN_IF_ERROR(CopyAtomically(run / "model.pt", result / "model_final.pt"));
  if (fs::exists(run / "checkpoints" / "best.pt")) {
    LUMPY_RETURN_IF_ERROR(ExportModel(run, run / "checkpoints" / "best.pt", result / "model_best.pt"));
  }
  // The report (figures where Python can draw them) and the sky check.
  if (RunChild(launcher, {"report", run.string(), "--checkpoint", "best"}, log) == 0) {
    LUMPY_RETURN_IF_ERROR(CopyFiles(run / "report", result / "report", {".png", "report.md", "worldline.csv"}));
    // The report names its run folder, which stays outside the repository:
    // the collected copy names the run instead.
    if (auto text = ReadInputFile(result / "report" / "report.md", InputKind::kRunFile, "report"); text.ok()) {
      std::string md = *text;
      const std::string from = run.string();
      for (size_t p = md.find(from); p != std::string::npos; p = md.find(from, p + r.name.size())) {
        md.replace(p, from.size(), r.name);
      }
      LUMPY_RETURN_IF_ERROR(WriteAtomically(result / "report" / "report.md", md));
    }
  } else {
    std::cerr << "  note: lumpy report failed (see " << log.string() << "); collected without figures" << std::endl;
  }
  if (r.sky) {
    if (RunChild(launcher, {"sky", run.string(), "--checkpoint", "best"}, log) == 0) {
      LUMPY_RETURN_IF_ERROR(CopyFiles(run, result, {"sky_best.json", "sky_best_bins.csv", "sky_best_map.png"}));
    } else {
      std::cerr << "  note: lumpy sky failed (see " << log.string() << ")" << std::endl;
    }
  }
  // summary.json last: a result folder with it is complete.
  return CopyAtomically(run / "summary.json", result / "summary.json");
}

std::string Duration(double s) {
  if (s < 120) return absl::StrFormat("%.0f s", s);
  if (s < 7200) return absl::StrFormat("%.1f min", s / 60);
  return absl::StrFormat("%.2f h", s / 3600);
}

// The study's runs that this pass goes through: all of them, or those --only
// names; false (said on stderr) when --only names a run the study lacks.
bool SelectRuns(const StudyOptions& o, const Study& study, std::vector<const StudyRun*>* runs) {
  for (const auto& r : study.runs) {
    if (o.only.empty() || std::count(o.only.begin(), o.only.end(), r.name)) runs->push_back(&r);
  }
  for (const auto& name : o.only) {
    bool known = false;
    for (const auto& r : study.runs) known = known || r.name == name;
    if (!known) {
      std::cerr << "--only: the study " << study.file.string() << " names no run " << name << std::endl;
      return false;
    }
  }
  return true;
}

// What became of one run of the study in this pass.
enum class Outcome {
  kCollected,  // its result folder is complete (collected now or before)
  kFinished,   // it ran to its end and is yet to be collected
  kSkipped,    // neither run nor collected (--dry-run, --no-run)
  kFailed,
  kStop,  // failed, and the study stops with it
};

// One run of the study: its run folder, result folder and log, and the head of its lines.
struct Step {
  const StudyRun& r;
  fs::path run, result, log;
  std::string head;
};

// The command line that starts the run afresh.
std::vector<std::string> RunCommand(const StudyOptions& o, const Step& s) {
  std::vector<std::string> args = {"run", s.r.experiment.string(), "--set", absl::StrCat("runtime.seed=", s.r.seed)};
  for (const auto& set : s.r.set) args.insert(args.end(), {"--set", set});
  if (o.steps > 0) args.insert(args.end(), {"--steps", std::to_string(o.steps)});
  args.insert(args.end(), {"--set", "telemetry.progress=false", "--out", s.run.string()});
  return args;
}

// Runs (or resumes) the run with `lumpy ARGS`: kFinished when it ran to its end.
Outcome Train(const StudyOptions& o, const Step& s, const std::vector<std::string>& args, bool resumable) {
  if (o.no_run) {
    std::cerr << s.head << "not run (--no-run)" << std::endl;
    return Outcome::kSkipped;
  }
  std::cerr << s.head << (resumable ? "resuming" : "running") << " (log: " << s.log.string() << ")" << std::endl;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = RunChild(o.launcher, args, s.log);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string after = SummaryStatus(s.run);
  if (rc == kCannotStart) {
    std::cerr << "study: stopped: lumpy could not be started; nothing else can run" << std::endl;
    return Outcome::kStop;
  }
  if (rc != 0 || (after != "completed" && after != "stopped")) {
    std::cerr << s.head << "failed after " << Duration(secs) << " (exit " << rc << ")";
    for (const auto& line : LastLogLines(s.log, 3)) std::cerr << "\n    " << line;
    std::cerr << "\n    the same command resumes it from its last checkpoint" << std::endl;
    // Ctrl-C or a time limit: the study stops too.
    return after == "interrupted" ? Outcome::kStop : Outcome::kFailed;
  }
  std::cerr << s.head << after << " in " << Duration(secs) << std::endl;
  return Outcome::kFinished;
}

// One run of the study: nothing when collected before; else run, resumed or
// taken as it finished (as far as the options let it), then collected.
Outcome StudyOneRun(const StudyOptions& o, const Step& s) {
  if (fs::exists(s.result / "summary.json") && fs::exists(s.result / "model_final.pt")) {
    std::cerr << s.head << "done (" << s.result.string() << ")" << std::endl;
    return Outcome::kCollected;
  }
  if (!s.r.error.empty()) {
    std::cerr << s.head << "cannot run: " << s.r.error << std::endl;
    return Outcome::kFailed;
  }
  const std::string status = SummaryStatus(s.run);
  const bool finished = status == "completed" || status == "stopped";
  const bool resumable = !finished && fs::exists(s.run / "checkpoints" / "latest.pt");
  std::vector<std::string> args;
  if (finished) {
    // collected below
  } else if (resumable) {
    args = {"resume", s.run.string()};
  } else {
    std::error_code ec;
    if (fs::exists(s.run) && !fs::is_empty(s.run, ec)) {
      std::cerr << s.head << s.run.string() << " holds neither a finished run nor a checkpoint (it failed before "
                << "its first one; its log: " << s.log.string() << "): remove it to start it again" << std::endl;
      return Outcome::kFailed;
    }
    args = RunCommand(o, s);
  }
  if (o.dry_run) {
    std::string what = finished ? "collect" : absl::StrCat("lumpy ", absl::StrJoin(args, " "), ", then collect");
    std::cerr << s.head << what << std::endl;
    return Outcome::kSkipped;
  }
  if (!finished) {
    if (const Outcome ran = Train(o, s, args, resumable); ran != Outcome::kFinished) return ran;
  }
  if (auto st = Collect(s.r, s.run, s.result, s.log, o.launcher); !st.ok()) {
    std::cerr << s.head << "cannot collect: " << st.message() << std::endl;
    return Outcome::kFailed;
  }
  std::cerr << s.head << "collected into " << s.result.string() << std::endl;
  return Outcome::kCollected;
}

}  // namespace

int RunStudy(const StudyOptions& o) {
  auto study = LoadStudy(o.study);
  if (!study.ok()) return ExitStatus(study.status());
  if (o.steps > 0 && o.results.empty()) {
    std::cerr << "--steps: a shortened pass would replace the study's results with shorter runs; give "
                 "--results DIR for its result folders" << std::endl;
    return kExitConfig;
  }
  const fs::path results = o.results.empty() ? study->results : fs::path(o.results);
  const fs::path work = fs::absolute(o.work);
  std::vector<const StudyRun*> runs;
  if (!SelectRuns(o, *study, &runs)) return kExitConfig;
  std::error_code ec;
  if (!o.dry_run && !o.no_run) fs::create_directories(work, ec);
  int failed = 0, done = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < runs.size(); ++i) {
    const StudyRun& r = *runs[i];
    const Step step{r, work / r.name, results / r.name, work / (r.name + ".log"),
                    absl::StrCat("[", i + 1, "/", runs.size(), "] ", r.name, ": ")};
    const Outcome outcome = StudyOneRun(o, step);
    if (outcome == Outcome::kCollected) ++done;
    if (outcome == Outcome::kFailed || outcome == Outcome::kStop) ++failed;
    if (outcome == Outcome::kStop) break;
  }
  if (o.dry_run) return kExitOk;
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "study: " << done << " of " << runs.size() << " runs collected, " << failed << " failed, in "
            << Duration(total) << std::endl;
  int rc = failed ? kExitRuntime : kExitOk;
  if (!o.no_claims) {
    ClaimsOptions c;
    c.study = o.study;
    c.out = o.results.empty() ? study->file.parent_path().string() : o.results;
    c.results = results.string();
    const int claims = RunClaims(c);
    if (rc == kExitOk) rc = claims;
  }
  return rc;
}

}  // namespace lumpy
