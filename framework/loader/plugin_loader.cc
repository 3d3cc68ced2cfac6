#include "loader/plugin_loader.h"
#include "core/input_file.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/executable.h"
#include <boost/dll/shared_library.hpp>
#include <elf.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lumpy/plugin.h"
#include "lumpy/status_macros.h"

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
  fs::path exe(LumpyExecutable().string());
  return (exe.parent_path() / ".." / "lib" / "lumpy" / "plugins").lexically_normal();
}

absl::Status PluginLoader::LoadDefaults() {
  fs::path dir = DefaultPluginDirectory();
  if (fs::is_directory(dir)) {
    LUMPY_RETURN_IF_ERROR(LoadPath(dir));
  } else {
    searched_.push_back(absl::StrCat(dir.string(), " (the default folder: missing)"));
  }
  if (const char* env = std::getenv("LUMPY_PLUGIN_PATH")) {
    for (absl::string_view entry : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      if (auto st = LoadPath(fs::path(std::string(entry)), "LUMPY_PLUGIN_PATH"); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("LUMPY_PLUGIN_PATH: ", st.message()));
      }
    }
  }
  return absl::OkStatus();
}

std::string PluginLoader::SearchedText() const {
  return searched_.empty() ? std::string("no plugin folder") : absl::StrJoin(searched_, ", ");
}

absl::Status PluginLoader::LoadPath(const fs::path& path, const std::string& from) {
  searched_.push_back(from.empty() ? path.string() : absl::StrCat(path.string(), " (", from, ")"));
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    fs::directory_iterator it(path, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(path.string(), ": cannot read the plugin folder: ", ec.message()));
    }
    for (const auto& entry : it) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && name.rfind("lumpy_", 0) == 0 &&
          entry.path().extension() == ".so") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      LUMPY_RETURN_IF_ERROR(LoadLibrary(f));
    }
    return absl::OkStatus();
  }
  if (!fs::exists(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": no such plugin library or folder"));
  }
  return LoadLibrary(path);
}

namespace {

// dlopen maps a file as its headers describe it: a truncated or damaged
// library makes it fault (SIGBUS) with no message. So, first: an ELF shared
// object of this machine's class, byte order and architecture, as long as
// its program and section headers say.
absl::Status CheckElf(const fs::path& file) {
  // A FIFO or device named as a plugin would be read for ever.
  if (auto st = CheckInputFile(file, InputKind::kPlugin, "plugin library"); !st.ok()) return st;
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(file.string(), ": cannot read it"));
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": not a loadable plugin: ", why));
  };
  Elf64_Ehdr h{};
  in.read(reinterpret_cast<char*>(&h), sizeof h);
  if (in.gcount() < static_cast<std::streamsize>(EI_NIDENT) || std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0) {
    return bad("not an ELF file");
  }
  if (!in) return bad("truncated inside its ELF header");
  if (h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_ident[EI_DATA] != ELFDATA2LSB) {
    return bad("not a 64-bit little-endian ELF file");
  }
  Elf64_Ehdr self{};
  std::ifstream exe("/proc/self/exe", std::ios::binary);
  exe.read(reinterpret_cast<char*>(&self), sizeof self);
  if (h.e_type != ET_DYN) return bad("not a shared library");
  if (exe && h.e_machine != self.e_machine) {
    return bad(absl::StrCat("built for ELF machine ", h.e_machine, ", this one is ", self.e_machine));
  }
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  uint64_t extent = std::max<uint64_t>(h.e_phoff + uint64_t{h.e_phnum} * h.e_phentsize,
                                       h.e_shoff + uint64_t{h.e_shnum} * h.e_shentsize);
  if (!ec && h.e_phentsize == sizeof(Elf64_Phdr) && h.e_phoff + uint64_t{h.e_phnum} * h.e_phentsize <= size) {
    in.seekg(static_cast<std::streamoff>(h.e_phoff));
    for (int i = 0; i < h.e_phnum && in; ++i) {
      Elf64_Phdr ph{};
      in.read(reinterpret_cast<char*>(&ph), sizeof ph);
      if (in && ph.p_type == PT_LOAD) extent = std::max<uint64_t>(extent, ph.p_offset + ph.p_filesz);
    }
  }
  if (ec || size < extent) {
    return bad(absl::StrCat("truncated: ", ec ? 0 : size, " bytes where its headers describe ", extent,
                            " (a partial copy or download?)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PluginLoader::LoadLibrary(const fs::path& file) {
  std::error_code ec;
  const std::string canonical = fs::weakly_canonical(file, ec).string();
  if (loaded_.count(canonical)) return absl::OkStatus();
  const std::string where = file.string();

  LUMPY_RETURN_IF_ERROR(CheckElf(file));
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
  absl::Status st = registry_.AddFromLibrary(where, register_plugin);
  KeptLibraries().push_back(std::move(lib));
  loaded_.insert(canonical);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
  return absl::OkStatus();
}

}  // namespace lumpy
