#pragma once
// Runs the `lumpy` binary of this build, as a user would, and captures its
// exit status, stdout and stderr.

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <chrono>
#include <functional>
#include <thread>

namespace lumpy::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline CliResult RunLumpy(const std::string& args, const std::filesystem::path& cwd) {
  auto err_file = std::filesystem::temp_directory_path() /
                  ("lumpy_cli_err_" + std::to_string(::getpid()) + ".txt");
  const std::string command = "cd '" + cwd.string() + "' && LUMPY_PLUGIN_PATH= '" +
                              std::string(LUMPY_TEST_BINARY) + "' " + args + " 2>'" +
                              err_file.string() + "'";
  CliResult r;
  FILE* pipe = popen(command.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadFile(err_file);
  std::filesystem::remove(err_file);
  return r;
}

// Runs a shell script (sh -c, single quotes inside it are not allowed) in
// CWD with the lumpy of this build as $LUMPY; std::system's status.
inline int Shell(const std::string& script, const std::filesystem::path& cwd) {
  const std::string command = "cd '" + cwd.string() + "' && LUMPY_PLUGIN_PATH= LUMPY='" +
                              std::string(LUMPY_TEST_BINARY) + "' sh -c '" + script + "'";
  return std::system(command.c_str());
}

// Polls `done` every 50 ms for up to `seconds`.
inline bool WaitFor(const std::function<bool()>& done, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}
}  // namespace lumpy::testing
