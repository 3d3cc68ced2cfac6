#include "config/config_tree.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;

class ConfigTreeTest : public testing::TempDirTest {
 protected:
  fs::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
};

TEST_F(ConfigTreeTest, ExtendsDeepMergesAndKeepsPositions) {
  Write("base.toml",
        "[model]\nplugin = \"siren\"\nhidden = 64\n[runtime]\nsteps = 10\nseed = 3\n");
  auto child = Write("child.toml", "extends = \"base.toml\"\n[runtime]\nsteps = 20\n");
  auto tree = LoadConfigTree(child);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->Find("extends"), nullptr);
  const ConfigNode* runtime = tree->Find("runtime");
  EXPECT_EQ(runtime->Find("steps")->as_int(), 20);
  EXPECT_EQ(runtime->Find("seed")->as_int(), 3);
  EXPECT_EQ(tree->Find("model")->Find("hidden")->as_int(), 64);
  // Each value remembers the file and line it came from.
  EXPECT_EQ(runtime->Find("steps")->location().file, child.string());
  EXPECT_EQ(runtime->Find("steps")->location().line, 3);
  EXPECT_EQ(runtime->Find("seed")->location().file, (dir_ / "base.toml").string());
  EXPECT_EQ(runtime->Find("seed")->location().line, 6);
  EXPECT_EQ(runtime->Find("seed")->location().column, 8);
}

// Hostile nesting is refused at its line, not by a stack overflow: a table
// header of a million components (TOML++ alone recursed once per component
// and crashed), 40 (Convert recursed), a --set key as deep. Long lines of
// numbers in an array, and dots in a multi-line string, are no keys.
TEST_F(ConfigTreeTest, DeepNestingIsRefusedAtItsLine) {
  auto header = [](int n) {
    std::string key = "a";
    for (int i = 1; i < n; ++i) key += ".a";
    return key;
  };
  for (int n : {1000000, 40}) {
    auto file = Write("deep.toml", "name = \"x\"\n[" + header(n) + "]\nk = 1\n");
    auto tree = LoadConfigTree(file);
    ASSERT_FALSE(tree.ok()) << n;
    EXPECT_EQ(tree.status().message(), file.string() + ":2:1: a key of " + std::to_string(n) +
                                           " components; tables nest at most 32 deep");
  }
  auto inline_deep = Write("inline.toml", "x = " + std::string(40, '[') + "1" + std::string(40, ']') + "\n");
  auto tree = LoadConfigTree(inline_deep);
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.status().message().find("nested more than 32 tables or arrays deep"), std::string::npos)
      << tree.status().message();
  ConfigNode root = ConfigNode::Table();
  auto deep_set = ApplyOverride(root, header(100000) + "=1");
  ASSERT_FALSE(deep_set.ok());
  EXPECT_NE(deep_set.message().find(": nested more than 32 tables deep"), std::string::npos);
  std::string numbers;
  for (int i = 0; i < 100; ++i) numbers += "1.5, ";
  auto fine = Write("fine.toml", "vals = [\n" + numbers + "\n]\ndesc = \"\"\"\n" + header(50) + " = 3\n\"\"\"\n");
  EXPECT_TRUE(LoadConfigTree(fine).ok()) << LoadConfigTree(fine).status();
}

// Non-ASCII text where TOML++ 3.3.0 tests for whitespace (a bare key, after
// a value, after a multi-line string's line-ending backslash) reached its
// "unreachable" branch: undefined behaviour, caught by UBSan in the fuzzer
// (fuzz/crashes/experiment/). Now a located error, and in strings and
// comments (where TOML allows any text) it is read as written.
TEST_F(ConfigTreeTest, NonAsciiTextOutsideStringsIsALocatedError) {
  for (const std::string text : {"caf\u00e9 = 1\n", "name = caf\u00e9\n", "n = 1 \u00fc\n",
                                 "s = \"\"\"a\\\u00e9\"\"\"\n", "k = 1 \u2cff\n", "k\ufbff = 2\n"}) {
    auto tree = LoadConfigTree(Write("bad.toml", text));
    ASSERT_FALSE(tree.ok()) << text;
    EXPECT_EQ(tree.status().message().rfind((dir_ / "bad.toml").string() + ":1:", 0), 0u) << tree.status();
  }
  auto good = LoadConfigTree(Write("good.toml", "# caf\u00e9 \u2cff\nname = \"caf\u00e9 \u00fc\"\n"));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->Find("name")->as_string(), "caf\u00e9 \u00fc");
}

TEST_F(ConfigTreeTest, OverridesAreTyped) {
  ConfigNode root = ConfigNode::Table();
  ASSERT_TRUE(ApplyOverride(root, "runtime.steps=100").ok());
  ASSERT_TRUE(ApplyOverride(root, "optimizer.lr=1e-3").ok());
  ASSERT_TRUE(ApplyOverride(root, "telemetry.progress=false").ok());
  ASSERT_TRUE(ApplyOverride(root, "loss.wec.constraint.plugin=linear").ok());
  ASSERT_TRUE(ApplyOverride(root, "domains.bulk.x=[-2, 2]").ok());
  ASSERT_TRUE(ApplyOverride(root, "name=\"quoted text\"").ok());
  EXPECT_EQ(root.Find("runtime")->Find("steps")->kind(), ConfigNode::Kind::kInt);
  EXPECT_EQ(root.Find("optimizer")->Find("lr")->kind(), ConfigNode::Kind::kDouble);
  EXPECT_EQ(root.Find("telemetry")->Find("progress")->kind(), ConfigNode::Kind::kBool);
  EXPECT_EQ(root.Find("loss")->Find("wec")->Find("constraint")->Find("plugin")->as_string(),
            "linear");
  EXPECT_EQ(root.Find("domains")->Find("bulk")->Find("x")->items().size(), 2u);
  EXPECT_EQ(root.Find("name")->as_string(), "quoted text");
  EXPECT_EQ(root.Find("runtime")->Find("steps")->location().ToString(),
            "--set runtime.steps=100");
}

TEST_F(ConfigTreeTest, MalformedOverridesAreRejected) {
  ConfigNode root = ConfigNode::Table();
  EXPECT_EQ(ApplyOverride(root, "runtime.steps").message(),
            "--set runtime.steps: expected KEY=VALUE, e.g. --set runtime.steps=100");
  EXPECT_EQ(ApplyOverride(root, "runtime..steps=1").message(),
            "--set runtime..steps=1: \"runtime..steps\" is not a key path (a.b.c)");
}

TEST_F(ConfigTreeTest, SwitchingPluginDropsTheOldPluginsParameters) {
  Write("base.toml",
        "[loss.wec]\nplugin = \"wec\"\ndomain = \"bulk\"\n"
        "[loss.wec.constraint]\nplugin = \"augmented_lagrangian\"\nmu0 = 10.0\ntau = 0.9\n"
        "weight = 2.0\n");
  auto child = Write("child.toml",
                     "extends = \"base.toml\"\n[loss.wec.constraint]\nplugin = \"linear\"\n");
  auto tree = LoadConfigTree(child);
  ASSERT_TRUE(tree.ok()) << tree.status();
  const ConfigNode* c = tree->Find("loss")->Find("wec")->Find("constraint");
  EXPECT_EQ(c->Find("plugin")->as_string(), "linear");
  EXPECT_EQ(c->Find("mu0"), nullptr);
  EXPECT_EQ(c->Find("tau"), nullptr);
  // `weight` is the handler's own parameter here, not a loss entry's.
  EXPECT_EQ(c->Find("weight"), nullptr);
  // The same through --set.
  auto base = LoadConfigTree(dir_ / "base.toml");
  ASSERT_TRUE(ApplyOverride(*base, "loss.wec.constraint.plugin=soft_quadratic").ok());
  EXPECT_EQ(base->Find("loss")->Find("wec")->Find("constraint")->Find("mu0"), nullptr);
  // The loss entry itself keeps its structural keys.
  EXPECT_EQ(base->Find("loss")->Find("wec")->Find("domain")->as_string(), "bulk");
  EXPECT_EQ(base->Find("loss")->Find("wec")->Find("constraint")->Find("weight"), nullptr);
  // Switching a loss entry's plugin keeps its domain, weight and handler table.
  ConfigNode root = ConfigNode::Table();
  ASSERT_TRUE(ApplyOverride(root, "loss.e.plugin=a").ok());
  ASSERT_TRUE(ApplyOverride(root, "loss.e.domain=bulk").ok());
  ASSERT_TRUE(ApplyOverride(root, "loss.e.weight=3").ok());
  ASSERT_TRUE(ApplyOverride(root, "loss.e.a_param=1").ok());
  ASSERT_TRUE(ApplyOverride(root, "loss.e.plugin=b").ok());
  const ConfigNode* e = root.Find("loss")->Find("e");
  EXPECT_EQ(e->Find("domain")->as_string(), "bulk");
  EXPECT_EQ(e->Find("weight")->as_int(), 3);
  EXPECT_EQ(e->Find("a_param"), nullptr);
}

TEST_F(ConfigTreeTest, SamePluginMergesParameters) {
  Write("base.toml", "[c]\nplugin = \"al\"\nmu0 = 10.0\ntau = 0.9\n");
  auto child = Write("child.toml", "extends = \"base.toml\"\n[c]\nplugin = \"al\"\ntau = 0.95\n");
  auto tree = LoadConfigTree(child);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree->Find("c")->Find("mu0")->as_double(), 10.0);
  EXPECT_EQ(tree->Find("c")->Find("tau")->as_double(), 0.95);
}

TEST_F(ConfigTreeTest, EnabledFalseDropsInheritedEntries) {
  Write("base.toml",
        "[loss.efe]\nplugin = \"efe_residual\"\n[loss.wec]\nplugin = \"wec\"\n");
  auto child = Write("child.toml", "extends = \"base.toml\"\n[loss.wec]\nenabled = false\n");
  auto tree = LoadConfigTree(child);
  ASSERT_TRUE(tree.ok());
  DropDisabled(*tree);
  EXPECT_NE(tree->Find("loss")->Find("efe"), nullptr);
  EXPECT_EQ(tree->Find("loss")->Find("wec"), nullptr);
}

TEST_F(ConfigTreeTest, ThreeLevelChainAndRelativePaths) {
  fs::create_directories(dir_ / "sub");
  Write("root.toml", "[runtime]\nseed = 1\nsteps = 5\n");
  Write("sub/mid.toml", "extends = \"../root.toml\"\n[runtime]\nseed = 2\n");
  auto leaf = Write("leaf.toml", "extends = \"sub/mid.toml\"\n[runtime]\nsteps = 7\n");
  auto tree = LoadConfigTree(leaf);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->Find("runtime")->Find("seed")->as_int(), 2);
  EXPECT_EQ(tree->Find("runtime")->Find("steps")->as_int(), 7);
}

TEST_F(ConfigTreeTest, ResolvedTomlReadsBackToTheSameTree) {
  auto file = Write("a.toml",
                    "name = \"x\"\n[runtime]\nsteps = 5\nlr = 0.30000000000000004\n"
                    "[domains.bulk]\nx = [-1.0, 1.0]\n[domains.bulk.strata.all]\ncount = 3\n");
  auto tree = LoadConfigTree(file);
  ASSERT_TRUE(tree.ok());
  auto again = Write("b.toml", ToToml(*tree));
  auto tree2 = LoadConfigTree(again);
  ASSERT_TRUE(tree2.ok()) << tree2.status();
  EXPECT_EQ(ToToml(*tree), ToToml(*tree2));
  EXPECT_EQ(tree2->Find("runtime")->Find("lr")->as_double(), 0.30000000000000004);
}

}  // namespace
}  // namespace lumpy
