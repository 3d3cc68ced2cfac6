#pragma once
// Plugin discovery and loading (Boost.DLL).
//
// A plugin library is checked before anything in it is called: its plain
// PluginInfo record must carry the lumpy magic, this SDK's ABI version and
// this LibTorch's major.minor and C++ ABI. Only then is its registration entry
// point called. Loaded libraries stay loaded for the life of the process
// (objects created by a plugin must never outlive its code).
//
// Search path, in order: the build's (or installation's) plugin folder next
// to the executable, each entry of LUMPY_PLUGIN_PATH (':'-separated), and the
// experiment's [plugins] paths. A folder contributes every lumpy_*.so in it;
// a file entry is loaded as given.

#include "engine_export.h"
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "lumpy/registry.h"

namespace lumpy {

class LUMPY_ENGINE_API PluginLoader {
 public:
  explicit PluginLoader(Registry& registry) : registry_(registry) {}

  // A library file or a folder of lumpy_*.so; FROM says where it was named
  // (for SearchedText). All errors are InvalidArgument with a message that
  // starts with the offending path.
  absl::Status LoadPath(const std::filesystem::path& path, const std::string& from = "");

  // The default folder and LUMPY_PLUGIN_PATH.
  absl::Status LoadDefaults();

  // <folder of the running executable>/../lib/lumpy/plugins
  static std::filesystem::path DefaultPluginDirectory();

  const std::set<std::string>& loaded() const { return loaded_; }
  // Every folder and file searched, in order, each with where it was named:
  // what an unknown plugin's message lists.
  std::string SearchedText() const;

 private:
  absl::Status LoadLibrary(const std::filesystem::path& file);
  Registry& registry_;
  std::set<std::string> loaded_;  // canonical paths
  std::vector<std::string> searched_;
};

}  // namespace lumpy
