#include "train/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

bool FaultRequested(const char* what, int64_t step) {
  const char* env = std::getenv("LUMPY_FAULT");
  return env != nullptr && std::string(env) == absl::StrCat(what, ":", step);
}

}  // namespace

void FaultPoint(const char* what, int64_t step) {
  if (FaultRequested(what, step)) std::raise(SIGKILL);
}

namespace {

// "cannot write FILE: WHAT (the OS's reason)", an Unavailable error (the
// cause, e.g. a full disk, is outside the run: resuming continues once it is
// fixed), after removing the temporary file.
absl::Status WriteFailed(const fs::path& tmp, const fs::path& target, const std::string& what, int os_error) {
  std::error_code ec;
  fs::remove(tmp, ec);
  return absl::UnavailableError(absl::StrCat("cannot write ", target.string(), what.empty() ? "" : ": ", what,
                                             os_error != 0 ? absl::StrCat(" (", std::strerror(os_error), ")") : ""));
}

// fsync(2) of a file or folder; the OS's error number, 0 if it succeeded.
int Sync(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

// Writes TMP with `bytes` (write(2), checked), fsyncs it, renames it over
// PATH and syncs the folder.
absl::Status WriteAndReplace(const fs::path& tmp, const fs::path& path, const std::string& bytes) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return WriteFailed(tmp, path, "", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      ::close(fd);
      return WriteFailed(tmp, path, "", e);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return WriteFailed(tmp, path, "", e);
  }
  if (::close(fd) != 0) return WriteFailed(tmp, path, "", errno);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return WriteFailed(tmp, path, absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()), 0);
  Sync(path.parent_path());
  return absl::OkStatus();
}

}  // namespace

absl::Status SaveArchiveAtomically(torch::serialize::OutputArchive& archive, const fs::path& path,
                                   int64_t step) {
  fs::path tmp = path;
  tmp += ".tmp";
  // Serialized in memory first: LibTorch's file writer throws from its
  // destructor when the disk is full, which no caller can catch.
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return WriteFailed(tmp, path, what.substr(0, what.find('\n')), 0);
  }
  if (FaultRequested("kill-in-checkpoint", step)) {
    const std::string all = bytes.str();
    (void)WriteAndReplace(tmp, tmp, all.substr(0, all.size() / 2));  // half of it, under .tmp
    std::raise(SIGKILL);
  }
  return WriteAndReplace(tmp, path, bytes.str());
}

absl::Status CopyAtomically(const fs::path& from, const fs::path& to) {
  fs::path tmp = to;
  tmp += ".tmp";
  std::ifstream in(from, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) return WriteFailed(tmp, to, absl::StrCat("cannot read ", from.string()), errno);
  return WriteAndReplace(tmp, to, bytes.str());
}

absl::Status WriteAtomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  return WriteAndReplace(tmp, path, text);
}

std::string ExperimentFingerprint(const Experiment& exp) {
  ConfigNode tree = exp.resolved;
  if (ConfigNode* runtime = tree.Find("runtime")) runtime->Erase("steps");
  if (ConfigNode* telemetry = tree.Find("telemetry")) telemetry->Erase("progress");
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
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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

}  // namespace lumpy
