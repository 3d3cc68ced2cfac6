#pragma once
// The built-in plugins of this build, loaded once per test binary.

#include <gtest/gtest.h>

#include "loader/plugin_loader.h"

namespace lumpy::testing {

inline const Registry& BuiltInPlugins() {
  static const Registry* registry = [] {
    auto* r = new Registry();
    PluginLoader loader(*r);
    absl::Status st = loader.LoadPath(PluginLoader::DefaultPluginDirectory());
    if (!st.ok()) throw std::runtime_error(std::string(st.message()));
    return r;
  }();
  return *registry;
}

// A built-in plugin from its defaults and `overrides`; fails the test if it
// cannot be made.
template <class T>
std::shared_ptr<T> MakeBuiltIn(const std::string& name,
                               std::map<std::string, ParamValue> overrides = {}) {
  auto made = BuiltInPlugins().Make<T>(name, std::move(overrides));
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *made : nullptr;
}

// Flat LCDM with h0 and omega_m both trainable (the gradient tests' subject).
inline std::shared_ptr<MetricModel> TrainableLcdm(double h0, double omega_m) {
  return MakeBuiltIn<MetricModel>("flrw", {{"scale_factor", std::string("lcdm")},
                                           {"h0", h0},
                                           {"omega_m", omega_m},
                                           {"h0_trainable", true},
                                           {"omega_m_trainable", true}});
}

}  // namespace lumpy::testing
