#pragma once
// The plugin entry point.
//
// A plugin library defines one registration function and names it with
// LUMPY_PLUGIN:
//
//   namespace {
//   absl::Status Register(lumpy::Registry& registry) {
//     return registry.AddConstraint("my_handler", "one-line doc", {...}, factory);
//   }
//   }  // namespace
//   LUMPY_PLUGIN(Register)
//
// LUMPY_PLUGIN exports two symbols: a plain-data PluginInfo record that the
// loader reads and checks *before* calling anything in the library, and the
// registration function under the alias `lumpy_register_plugin` (Boost.DLL).
// There is no static self-registration.

#include <torch/version.h>

#include <cstdint>

#include <boost/dll/alias.hpp>

#include "absl/status/status.h"
#include "lumpy/build_info.h"
#include "lumpy/registry.h"

namespace lumpy {

inline constexpr uint64_t kPluginMagic = 0x4c554d5059504c47ULL;  // "LUMPYPLG"

// Plain data, layout fixed forever: magic first, so that any future record
// can still be recognised and rejected with a clear message.
struct PluginInfo {
  uint64_t magic;
  uint32_t sdk_abi_version;
  uint32_t torch_major;
  uint32_t torch_minor;
  uint32_t cxx11_abi;
  char sdk_version[32];
  char compiler[96];
};

using RegisterFunction = absl::Status(Registry&);

}  // namespace lumpy

#define LUMPY_PLUGIN_STRINGIFY2(x) #x
#define LUMPY_PLUGIN_STRINGIFY(x) LUMPY_PLUGIN_STRINGIFY2(x)

#define LUMPY_PLUGIN_INFO_INITIALIZER                                        \
  {                                                                          \
    ::lumpy::kPluginMagic, LUMPY_SDK_ABI_VERSION, TORCH_VERSION_MAJOR,       \
        TORCH_VERSION_MINOR, _GLIBCXX_USE_CXX11_ABI, LUMPY_VERSION_STRING,   \
        "gcc " LUMPY_PLUGIN_STRINGIFY(__GNUC__) "." LUMPY_PLUGIN_STRINGIFY( \
            __GNUC_MINOR__)                                                  \
  }

#define LUMPY_PLUGIN(register_function)                                  \
  extern "C" BOOST_SYMBOL_EXPORT const ::lumpy::PluginInfo               \
      lumpy_plugin_info = LUMPY_PLUGIN_INFO_INITIALIZER;                 \
  BOOST_DLL_ALIAS(register_function, lumpy_register_plugin)
