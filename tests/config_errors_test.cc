// Golden tests: each broken experiment in tests/config_errors/NN_*.toml gives
// exactly the one-line message in NN_*.expected on stderr, exit status 2, and
// nothing on stdout. Absolute paths of this folder read as <dir>, the build's
// plugin folder as <plugins>.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_replace.h"
#include "cli_runner.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(LUMPY_TEST_SOURCE_DIR) / "config_errors";

std::vector<std::string> Cases() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kDir)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".toml" && std::isdigit(static_cast<unsigned char>(name[0]))) {
      names.push_back(e.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ConfigErrorGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfigErrorGolden, ExactMessageAndExitStatus2) {
  const std::string name = GetParam();
  ASSERT_TRUE(fs::exists(kDir / (name + ".expected"))) << "missing " << name << ".expected";
  const std::string expected = testing::ReadFile(kDir / (name + ".expected"));
  auto r = testing::RunLumpy("check " + name + ".toml", kDir);
  // The build's plugin folder (an unknown plugin's message lists it) reads as <plugins>.
  const std::string plugins =
      (fs::path(LUMPY_TEST_BINARY).parent_path() / ".." / "lib" / "lumpy" / "plugins").lexically_normal().string();
  const std::string err = absl::StrReplaceAll(r.err, {{kDir.string(), "<dir>"}, {plugins, "<plugins>"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(err, expected);
  EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(Files, ConfigErrorGolden, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param; });

TEST(ConfigErrorGoldenSet, HasAtLeastFifteenCases) { EXPECT_GE(Cases().size(), 15u); }

TEST(ConfigErrorGoldenSet, TheBaseItselfIsValid) {
  auto r = testing::RunLumpy("check base.toml", kDir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "base.toml: ok (siren metric, 1 domain(s), 2 loss term(s), 2 steps)\n");
}

}  // namespace
}  // namespace lumpy
