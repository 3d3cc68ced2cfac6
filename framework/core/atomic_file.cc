#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// LUMPY_FAULT = "what:step", or "what:step:rank" for one rank of several
// (LUMPY_RANK) alone.
bool FaultRequested(const char* what, int64_t step) {
  const char* env = std::getenv("LUMPY_FAULT");
  if (env == nullptr) return false;
  const std::string fault(env), here = absl::StrCat(what, ":", step);
  if (fault == here) return true;
  const char* rank = std::getenv("LUMPY_RANK");
  return rank != nullptr && fault == absl::StrCat(here, ":", rank);
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
  // The temporary is always a new file of ours: a stale one (a crash's, or
  // a link planted in its place) is unlinked, never written through.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
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

absl::StatusOr<int> OpenOwnFile(const fs::path& path, OpenMode mode) {
  const int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC |
                    (mode == OpenMode::kCreate ? O_CREAT | O_EXCL : O_APPEND);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd >= 0) return fd;
  const int e = errno;
  if (e == ELOOP || (e == EEXIST && fs::is_symlink(path))) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), ": is a symbolic link; lumpy writes its own files only, never through a link "
                       "(remove it, or choose another folder)"));
  }
  if (e == EEXIST) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": already exists and lumpy did not write it "
                                                                  "here; choose another folder"));
  }
  return absl::UnavailableError(absl::StrCat("cannot write ", path.string(), " (", std::strerror(e), ")"));
}

absl::Status WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(std::strerror(n < 0 ? errno : EIO));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

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

}  // namespace lumpy
