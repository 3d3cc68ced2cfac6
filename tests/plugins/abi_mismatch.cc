// A plugin that claims another SDK ABI, as one built against another lumpy
// would. The loader must refuse it before calling anything: its entry point
// aborts the process if it is ever called.
#include <cstdlib>

#include "lumpy/lumpy.h"

namespace {
absl::Status Register(lumpy::Registry&) { std::abort(); }
}  // namespace

extern "C" BOOST_SYMBOL_EXPORT const lumpy::PluginInfo lumpy_plugin_info = {
    lumpy::kPluginMagic, LUMPY_SDK_ABI_VERSION + 41, TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR,
    _GLIBCXX_USE_CXX11_ABI, "9.9.9", "gcc 99.1"};
BOOST_DLL_ALIAS(Register, lumpy_register_plugin)
