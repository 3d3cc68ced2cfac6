#include "train/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/input_file.h"
#include "lumpy/module_state.h"

namespace lumpy {

namespace fs = std::filesystem;

std::string ExperimentFingerprint(const Experiment& exp) {
  ConfigNode tree = exp.resolved;
  if (ConfigNode* runtime = tree.Find("runtime")) runtime->Erase("steps");
  if (ConfigNode* telemetry = tree.Find("telemetry")) telemetry->Erase("progress");
  if (ConfigNode* checkpoint = tree.Find("checkpoint")) checkpoint->Erase("every_minutes");
  return ToToml(tree);
}

absl::StatusOr<std::unique_ptr<RunFolderLock>> RunFolderLock::Acquire(const fs::path& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) {
    const std::string message =
        absl::StrCat("cannot create run folder ", run_dir.string(), ": ", ec.message());
    // A file where the folder should be is the user's to fix (exit 2), not a run-time failure.
    if (ec == std::errc::not_a_directory || ec == std::errc::file_exists) {
      return absl::InvalidArgumentError(absl::StrCat(message, " (a file is in the way; choose another --out)"));
    }
    return absl::InternalError(message);
  }
  const fs::path file = run_dir / ".lock";
  // Never through a link planted in the folder (it would truncate its target).
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ELOOP) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": is a symbolic link; lumpy writes its own files "
                                                                  "only, never through a link (remove it)"));
  }
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", file.string(), ": ", std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (why != EWOULDBLOCK) {
      return absl::InternalError(absl::StrCat("cannot lock ", file.string(), ": ", std::strerror(why)));
    }
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("unknown");
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return absl::InvalidArgumentError(absl::StrCat(
        run_dir.string(), ": in use by another lumpy process (pid ", pid,
        "); one process at a time runs or resumes a run folder: wait for it to end or stop it"));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int why = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot write ", file.string(), ": ", std::strerror(why)));
  }
  return std::unique_ptr<RunFolderLock>(new RunFolderLock(fd));
}

RunFolderLock::~RunFolderLock() { ::close(fd_); }

void WriteModelKind(torch::serialize::OutputArchive& archive, const std::string& model_name) {
  archive.write("model_kind", c10::IValue(model_name));
}

absl::Status LoadModelCheckpoint(MetricModel& model, const fs::path& path,
                                 const std::string& model_name,
                                 const std::vector<std::pair<std::string, LossTerm*>>& terms,
                                 std::string* note) {
  fs::path file = fs::is_directory(path) ? path / "model.pt" : path;
  if (!fs::is_regular_file(file)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), ": no such checkpoint (give a run folder, its model.pt, or "
        "checkpoints/latest.pt or best.pt)"));
  }
  if (auto st = CheckInputFile(file, InputKind::kCheckpoint, "checkpoint"); !st.ok()) {
    return absl::InvalidArgumentError(st.message());
  }
  absl::Status st;
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string());
    c10::IValue kind;
    if (archive.try_read("model_kind", kind) && kind.isString() && kind.toStringRef() != model_name) {
      return absl::InvalidArgumentError(absl::StrCat(file.string(), ": a checkpoint of a ", kind.toStringRef(),
                                                     " metric; this experiment's model is ", model_name));
    }
    // A training checkpoint (checkpoints/latest.pt, best.pt) holds the
    // metric under "model"; model.pt holds it at the top.
    c10::IValue format;
    torch::serialize::InputArchive inner;
    if (archive.try_read("format", format) && archive.try_read("model", inner)) {
      st = LoadModuleState(inner, model, "");
    } else {
      st = LoadModuleState(archive, model, "", /*shared=*/true);
    }
  } catch (const c10::Error& e) {
    st = absl::InvalidArgumentError(e.what_without_backtrace());
  }
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": does not fit this experiment's model (", model_name, "): ", st.message()));
  }
  // The fitted physical scalars, by the column names metrics.csv gives them.
  std::vector<std::pair<std::string, PhysicalParameter>> wanted;
  for (auto& p : model.physical_parameters()) wanted.push_back({"model." + p.name, p});
  for (const auto& [name, term] : terms) {
    for (auto& p : term->physical_parameters()) wanted.push_back({name + "." + p.name, p});
  }
  if (wanted.empty()) return absl::OkStatus();
  c10::IValue names;
  torch::Tensor values;
  if (!archive.try_read("physical_names", names) || !names.isString() ||
      !archive.try_read("physical", values)) {
    if (note) {
      *note = absl::StrCat(file.string(), " holds no fitted physical scalars (written by an older "
                           "lumpy): ", wanted.front().first, " and the others keep their "
                           "experiment values");
    }
    return absl::OkStatus();
  }
  std::vector<std::string> saved = absl::StrSplit(names.toStringRef(), '\n', absl::SkipEmpty());
  values = values.to(torch::kCPU, torch::kFloat64);
  torch::NoGradGuard no_grad;
  for (auto& [column, p] : wanted) {
    auto it = std::find(saved.begin(), saved.end(), column);
    if (it == saved.end() || it - saved.begin() >= values.numel()) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.string(), ": has no value of ", column, " (fitted by this experiment); it holds ",
          saved.empty() ? std::string("none") : absl::StrJoin(saved, ", ")));
    }
    p.value.fill_(values[it - saved.begin()].item<double>());
  }
  return absl::OkStatus();
}

}  // namespace lumpy
