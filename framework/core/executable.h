#pragma once
// This lumpy's executable, to start it again (run folders' ranks, a sweep's
// variants, a study's runs) or to find what is installed beside it. Where a
// rebuild replaced the file while lumpy runs, Linux names the running one
// "PATH (deleted)": the path itself is the new build, which is what a child
// must start.
#include <boost/dll/runtime_symbol_info.hpp>
#include <filesystem>
#include <string>

namespace lumpy {

inline std::filesystem::path LumpyExecutable() {
  std::string exe = boost::dll::program_location().string();
  const std::string deleted = " (deleted)";
  if (exe.size() > deleted.size() && exe.compare(exe.size() - deleted.size(), deleted.size(), deleted) == 0) {
    exe.resize(exe.size() - deleted.size());
  }
  return exe;
}

}  // namespace lumpy
