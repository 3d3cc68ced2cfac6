#include "loader/plugin_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "lumpy/plugin.h"

namespace lumpy {
namespace {

const std::string kTestPlugins = LUMPY_TEST_PLUGIN_DIR;

TEST(PluginLoader, LoadsEveryBuiltInPluginFromTheBuildFolder) {
  Registry registry;
  PluginLoader loader(registry);
  ASSERT_TRUE(loader.LoadPath(PluginLoader::DefaultPluginDirectory()).ok());
  EXPECT_EQ(registry.Names(PluginKind::kMetric),
            (std::vector<std::string>{"flrw", "kasner", "ltb", "minkowski", "schwarzschild", "siren"}));
  EXPECT_EQ(registry.Names(PluginKind::kLoss),
            (std::vector<std::string>{"bao_chi2", "cmb_expansion", "cmb_homogeneity", "cmb_isotropy",
                                      "efe_residual", "lorentzian", "supernova_chi2", "wec"}));
  EXPECT_EQ(registry.Names(PluginKind::kConstraint),
            (std::vector<std::string>{"augmented_lagrangian", "homoscedastic", "linear", "soft_quadratic"}));
  EXPECT_EQ(registry.Names(PluginKind::kCurriculum),
            (std::vector<std::string>{"spatial_weight_net", "uniform"}));
  EXPECT_EQ(registry.Find(PluginKind::kLoss, "wec")->loss_kind, LossKind::kConstraint);
  EXPECT_EQ(registry.Find(PluginKind::kLoss, "cmb_isotropy")->loss_kind, LossKind::kConstraint);
  EXPECT_EQ(registry.Find(PluginKind::kLoss, "efe_residual")->loss_kind, LossKind::kObjective);
  EXPECT_EQ(registry.Find(PluginKind::kLoss, "supernova_chi2")->loss_kind, LossKind::kDataset);
  EXPECT_EQ(registry.Find(PluginKind::kLoss, "bao_chi2")->loss_kind, LossKind::kDataset);
  EXPECT_NE(registry.Find(PluginKind::kMetric, "siren")->library.find("lumpy_siren.so"),
            std::string::npos);
  // Loading the same folder again is a no-op, not a duplicate.
  EXPECT_TRUE(loader.LoadPath(PluginLoader::DefaultPluginDirectory()).ok());
}

TEST(PluginLoader, MissingLibrary) {
  Registry registry;
  PluginLoader loader(registry);
  auto st = loader.LoadPath("/nonexistent/lumpy_nothing.so");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "/nonexistent/lumpy_nothing.so: no such plugin library or folder");
}

TEST(PluginLoader, SharedLibraryThatIsNotAPlugin) {
  Registry registry;
  PluginLoader loader(registry);
  const std::string path = kTestPlugins + "/notplugin/lumpy_not_a_plugin.so";
  auto st = loader.LoadPath(path);
  EXPECT_EQ(st.message(),
            path + ": not a lumpy plugin (no lumpy_plugin_info record; build it with "
                   "lumpy_add_plugin() and LUMPY_PLUGIN from <lumpy/plugin.h>)");
}

TEST(PluginLoader, FileThatIsNotALibrary) {
  Registry registry;
  PluginLoader loader(registry);
  const std::string path = kTestPlugins + "/garbage/lumpy_garbage.so";
  auto st = loader.LoadPath(path);
  EXPECT_EQ(st.message(), path + ": not a loadable plugin: not an ELF file");
}

// A truncated copy of a real plugin (a partial download) once made every
// command die of SIGBUS inside dlopen: it is refused by its ELF headers
// first, naming the file. So is a plugin folder that cannot be read.
TEST(PluginLoader, TruncatedLibraryIsRefusedBeforeDlopen) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    absl::StrCat("lumpy_truncated_", ::getpid());
  std::filesystem::create_directories(dir);
  const auto real = PluginLoader::DefaultPluginDirectory() / "lumpy_wec.so";
  const auto cut = dir / "lumpy_wec.so";
  std::filesystem::copy_file(real, cut, std::filesystem::copy_options::overwrite_existing);
  const auto size = std::filesystem::file_size(real);
  for (uint64_t keep : {size / 2, size - 1, uint64_t{40}}) {
    std::filesystem::resize_file(cut, keep);
    Registry registry;
    PluginLoader loader(registry);
    auto st = loader.LoadPath(dir);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message().rfind(cut.string() + ": not a loadable plugin: truncated", 0), 0u) << keep << ": " << st.message();
  }
  std::filesystem::remove_all(dir);
}

TEST(PluginLoader, AbiMismatchIsRefusedBeforeAnythingIsCalled) {
  Registry registry;
  PluginLoader loader(registry);
  // The plugin's entry point aborts the process if it is ever called.
  const std::string folder = kTestPlugins + "/mismatch";
  auto st = loader.LoadPath(folder);
  const std::string ours = absl::StrCat("lumpy SDK ABI ", LUMPY_SDK_ABI_VERSION, " (lumpy ",
                                        LUMPY_VERSION_STRING, ", LibTorch ", TORCH_VERSION_MAJOR,
                                        ".", TORCH_VERSION_MINOR);
  EXPECT_EQ(st.message().rfind(folder + "/lumpy_abi_mismatch.so: incompatible plugin: built for "
                                        "lumpy SDK ABI " +
                                   std::to_string(LUMPY_SDK_ABI_VERSION + 41) +
                                   " (lumpy 9.9.9, LibTorch 1.13, gcc 99.1), but this lumpy is " +
                                   ours,
                               0),
            0u)
      << st.message();
  EXPECT_NE(st.message().find("; rebuild the plugin against this SDK"), std::string::npos);
  EXPECT_TRUE(registry.Names(PluginKind::kConstraint).empty());
}

TEST(PluginLoader, TwoLibrariesRegisteringOneName) {
  Registry registry;
  PluginLoader loader(registry);
  const std::string folder = kTestPlugins + "/dup";
  auto st = loader.LoadPath(folder);
  EXPECT_EQ(st.message(), folder + "/lumpy_dup_b.so: constraint plugin \"duplicate_handler\" is "
                                   "registered twice: by " +
                              folder + "/lumpy_dup_a.so and by " + folder +
                              "/lumpy_dup_b.so; remove one of the two libraries");
}

TEST(Registry, ReservedParameterNamesAreRefused) {
  Registry registry;
  auto st = registry.AddLoss("x", "", LossKind::kObjective,
                             {ParamSpec::Double("weight", "").Default(1.0)},
                             [](const Params&) -> absl::StatusOr<std::shared_ptr<LossTerm>> {
                               return absl::InternalError("unused");
                             });
  EXPECT_EQ(st.message(),
            "loss plugin \"x\" declares \"weight\", a key the core reserves; rename the parameter");
}

// The loader runs an entry point through Registry::AddFromLibrary: what it
// adds records the library, and the library is forgotten afterwards, even
// when the entry point throws.
TEST(Registry, AddFromLibraryAttributesOnlyWhatTheEntryPointAdds) {
  Registry registry;
  auto add = [](const std::string& name) {
    return [name](Registry& r) {
      return r.AddCurriculum(name, "", {}, [](const Params&) -> absl::StatusOr<std::shared_ptr<CurriculumWeighter>> {
        return absl::InternalError("unused");
      });
    };
  };
  ASSERT_TRUE(registry.AddFromLibrary("/x/lumpy_a.so", add("a")).ok());
  EXPECT_THROW(registry.AddFromLibrary("/x/lumpy_b.so", [](Registry&) -> absl::Status {
    throw std::runtime_error("entry point failed");
  }), std::runtime_error);
  ASSERT_TRUE(add("core")(registry).ok());
  EXPECT_EQ(registry.Find(PluginKind::kCurriculum, "a")->library, "/x/lumpy_a.so");
  EXPECT_EQ(registry.Find(PluginKind::kCurriculum, "core")->library, "");
}

}  // namespace
}  // namespace lumpy
