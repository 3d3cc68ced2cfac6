#include "loader/plugin_loader.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lumpy/plugin.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// Never destroyed: unloading a library that LibTorch objects came from
// crashes at exit, so every plugin stays mapped until the process ends.
std::vector<boost::dll::shared_library>& KeptLibraries() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}

std::string Describe(uint32_t abi, const char* version, uint32_t torch_major,
                     uint32_t torch_minor, const char* compiler) {
  return absl::StrCat("lumpy SDK ABI ", abi, " (lumpy ", version, ", LibTorch ", torch_major,
                      ".", torch_minor, ", ", compiler, ")");
}

std::string Bounded(const char* s, size_t n) { return std::string(s, strnlen(s, n)); }

}  // namespace

fs::path PluginLoader::DefaultPluginDirectory() {
  fs::path exe(boost::dll::program_location().string());
  return (exe.parent_path() / ".." / "lib" / "lumpy" / "plugins").lexically_normal();
}

absl::Status PluginLoader::LoadDefaults() {
  fs::path dir = DefaultPluginDirectory();
  if (fs::is_directory(dir)) {
    if (auto st = LoadPath(dir); !st.ok()) return st;
  }
  if (const char* env = std::getenv("LUMPY_PLUGIN_PATH")) {
    for (absl::string_view entry : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      if (auto st = LoadPath(fs::path(std::string(entry))); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("LUMPY_PLUGIN_PATH: ", st.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status PluginLoader::LoadPath(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && name.rfind("lumpy_", 0) == 0 &&
          entry.path().extension() == ".so") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (auto st = LoadLibrary(f); !st.ok()) return st;
    }
    return absl::OkStatus();
  }
  if (!fs::exists(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": no such plugin library or folder"));
  }
  return LoadLibrary(path);
}

absl::Status PluginLoader::LoadLibrary(const fs::path& file) {
  std::error_code ec;
  const std::string canonical = fs::weakly_canonical(file, ec).string();
  if (loaded_.count(canonical)) return absl::OkStatus();
  const std::string where = file.string();

  boost::dll::shared_library lib;
  try {
    lib.load(boost::dll::fs::path(canonical), boost::dll::load_mode::rtld_lazy |
                                                  boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": cannot load: ", e.what()));
  }
  if (!lib.has("lumpy_plugin_info")) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": not a lumpy plugin (no lumpy_plugin_info record; build it with "
               "lumpy_add_plugin() and LUMPY_PLUGIN from <lumpy/plugin.h>)"));
  }
  const auto& info = lib.get<const PluginInfo>("lumpy_plugin_info");
  if (info.magic != kPluginMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a lumpy plugin (its lumpy_plugin_info record is not one)"));
  }
  const std::string ours = Describe(LUMPY_SDK_ABI_VERSION, LUMPY_VERSION_STRING,
                                    TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR,
                                    "gcc " LUMPY_PLUGIN_STRINGIFY(__GNUC__) "." LUMPY_PLUGIN_STRINGIFY(__GNUC_MINOR__));
  const std::string theirs =
      Describe(info.sdk_abi_version, Bounded(info.sdk_version, sizeof info.sdk_version).c_str(),
               info.torch_major, info.torch_minor,
               Bounded(info.compiler, sizeof info.compiler).c_str());
  if (info.sdk_abi_version != LUMPY_SDK_ABI_VERSION || info.torch_major != TORCH_VERSION_MAJOR ||
      info.torch_minor != TORCH_VERSION_MINOR ||
      info.cxx11_abi != static_cast<uint32_t>(_GLIBCXX_USE_CXX11_ABI)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": incompatible plugin: built for ", theirs, ", but this lumpy is ",
                     ours, (info.cxx11_abi != static_cast<uint32_t>(_GLIBCXX_USE_CXX11_ABI)
                                ? " with another C++ string ABI"
                                : ""),
                     "; rebuild the plugin against this SDK"));
  }
  if (!lib.has("lumpy_register_plugin")) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": has a lumpy_plugin_info record but no lumpy_register_plugin entry point"));
  }
  auto& register_plugin = lib.get_alias<RegisterFunction>("lumpy_register_plugin");
  registry_.set_current_library(where);
  absl::Status st = register_plugin(registry_);
  registry_.set_current_library("");
  KeptLibraries().push_back(std::move(lib));
  loaded_.insert(canonical);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
  return absl::OkStatus();
}

}  // namespace lumpy
