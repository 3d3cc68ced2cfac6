#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

bool FaultRequested(const char* what, int64_t step) {
  const char* env = std::getenv("LUMPY_FAULT");
  return env != nullptr && std::string(env) == absl::StrCat(what, ":", step);
}

void SyncFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void FaultPoint(const char* what, int64_t step) {
  if (FaultRequested(what, step)) std::raise(SIGKILL);
}

absl::Status SaveArchiveAtomically(torch::serialize::OutputArchive& archive, const fs::path& path,
                                   int64_t step) {
  fs::path tmp = path;
  tmp += ".tmp";
  try {
    archive.save_to(tmp.string());
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("cannot write ", tmp.string(), ": ", e.what_without_backtrace()));
  }
  if (FaultRequested("kill-in-checkpoint", step)) {
    std::error_code ec;
    fs::resize_file(tmp, fs::file_size(tmp, ec) / 2, ec);
    std::raise(SIGKILL);
  }
  SyncFile(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()));
  SyncFile(path.parent_path());
  return absl::OkStatus();
}

absl::Status WriteAtomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()));
  return absl::OkStatus();
}

std::string ExperimentFingerprint(const Experiment& exp) {
  ConfigNode tree = exp.resolved;
  if (ConfigNode* runtime = tree.Find("runtime")) runtime->Erase("steps");
  if (ConfigNode* telemetry = tree.Find("telemetry")) telemetry->Erase("progress");
  return ToToml(tree);
}

}  // namespace lumpy
