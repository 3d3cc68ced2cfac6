#include "cli/figures.h"

#include <spawn.h>
#include <sys/wait.h>

#include "core/executable.h"
#include <filesystem>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace lumpy {

namespace fs = std::filesystem;

bool RunFigureScript(const std::string& script, const std::vector<std::string>& args,
                     std::string* why) {
  const fs::path exe(LumpyExecutable().string());
  fs::path path = (exe.parent_path() / ".." / "share" / "lumpy" / "scripts" / script).lexically_normal();
  if (!fs::exists(path)) path = fs::path(LUMPY_SOURCE_DIR) / "scripts" / script;
  if (!fs::exists(path)) {
    *why = absl::StrCat("no ", script, " beside the installation or in the source tree");
    return false;
  }
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::vector<std::string> argv_s = {python, path.string()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    *why = absl::StrCat("cannot start ", python);
    return false;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = absl::StrCat(path.string(), " failed (needs python3-matplotlib and python3-numpy)");
    return false;
  }
  return true;
}

}  // namespace lumpy
