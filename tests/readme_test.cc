// The README's commands cannot go stale: every `lumpy` command it shows (in
// its shell blocks and inline) names a subcommand that exists and only
// options that subcommand has, every repository file a command names exists,
// and the Quick start block runs as shown.

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli_runner.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;

const fs::path kRoot = fs::path(LUMPY_TEST_SOURCE_DIR).parent_path();

struct Shown {
  int line;          // in README.md
  std::string text;  // continuation lines joined, comment dropped
  bool quick_start;  // in the Quick start section's blocks
};

// Drops a trailing shell comment (" # ...").
std::string WithoutComment(const std::string& line) {
  static const std::regex comment(R"(\s+#.*$)");
  return std::regex_replace(line, comment, "");
}

std::vector<Shown> LumpyCommands(const std::string& readme) {
  std::vector<Shown> out;
  std::vector<std::string> lines = absl::StrSplit(readme, '\n');
  bool in_sh = false, in_block = false, quick = false;
  std::string pending;
  int pending_line = 0;
  static const std::regex inline_code("`(lumpy [^`]+)`");
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.rfind("## ", 0) == 0) quick = l == "## Quick start";
    if (l.rfind("```", 0) == 0) {
      in_block = !in_block;
      in_sh = in_block && l == "```sh";
      continue;
    }
    if (!in_block) {
      for (std::sregex_iterator m(l.begin(), l.end(), inline_code), end; m != end; ++m) {
        out.push_back({static_cast<int>(i + 1), (*m)[1].str(), false});
      }
      continue;
    }
    if (!in_sh) continue;
    std::string text = WithoutComment(l);
    if (pending.empty()) pending_line = static_cast<int>(i + 1);
    if (!text.empty() && text.back() == '\\') {
      pending += text.substr(0, text.size() - 1) + " ";
      continue;
    }
    pending += text;
    const std::string command(absl::StripAsciiWhitespace(pending));
    pending.clear();
    if (command.rfind("build/release/bin/lumpy", 0) == 0 || command.rfind("lumpy", 0) == 0) {
      out.push_back({pending_line, command, quick});
    }
  }
  return out;
}

// The subcommand (empty for the bare command) and the --options a command uses.
void Parse(const std::string& command, std::string* sub, std::vector<std::string>* options,
           std::vector<std::string>* paths) {
  std::vector<std::string> tokens = absl::StrSplit(command, ' ', absl::SkipWhitespace());
  sub->clear();
  if (tokens.size() > 1 && tokens[1][0] != '-' && tokens[1][0] != '[') *sub = tokens[1];
  static const std::regex option(R"(^\[?(--[a-z][a-z0-9-]*))");
  static const std::regex path(R"(^(experiments|scripts|data|fuzz|sdk|tests)/[^ \[\]]*\.(toml|sh|py|dat|csv)$)");
  for (const auto& t : tokens) {
    std::smatch m;
    if (std::regex_search(t, m, option)) options->push_back(m[1].str());
    if (std::regex_match(t, path)) paths->push_back(t);
  }
}

TEST(ReadmeTest, EveryLumpyCommandItShowsExistsWithItsOptions) {
  const std::string readme = ReadFile(kRoot / "README.md");
  const auto commands = LumpyCommands(readme);
  ASSERT_GT(commands.size(), 20u) << "the README's commands were not found";
  std::map<std::string, std::string> help;  // subcommand -> its --help
  std::set<std::string> subcommands;
  for (const auto& c : commands) {
    SCOPED_TRACE("README.md:" + std::to_string(c.line) + ": " + c.text);
    std::string sub;
    std::vector<std::string> options, paths;
    Parse(c.text, &sub, &options, &paths);
    if (!help.count(sub)) {
      auto h = RunLumpy(sub + " --help", fs::temp_directory_path());
      ASSERT_EQ(h.exit_code, 0) << "no such command: lumpy " << sub << "\n" << h.err;
      help[sub] = h.out + h.err;
    }
    subcommands.insert(sub);
    for (const auto& o : options) {
      if (o == "--help") continue;
      EXPECT_NE(help[sub].find(o), std::string::npos) << "lumpy " << sub << " has no option " << o;
    }
    for (const auto& p : paths) EXPECT_TRUE(fs::exists(kRoot / p)) << p << " is not in the repository";
  }
  // Every subcommand the CLI has is shown somewhere.
  static const std::regex listed(R"(^\s+([a-z][a-z-]+)\s{2,})");
  std::istringstream top(help[""]);
  std::string line;
  bool in_subcommands = false;
  for (std::string l; std::getline(top, l);) {
    if (l.rfind("Subcommands:", 0) == 0) in_subcommands = true;
    std::smatch m;
    if (in_subcommands && std::regex_search(l, m, listed)) {
      EXPECT_TRUE(subcommands.count(m[1].str())) << "the README shows no `lumpy " << m[1].str() << "`";
    }
  }
}

using ReadmeRun = testing::TempDirTest;

TEST_F(ReadmeRun, TheQuickStartRunsAsShown) {
  const auto commands = LumpyCommands(ReadFile(kRoot / "README.md"));
  int ran = 0;
  for (const auto& c : commands) {
    if (!c.quick_start) continue;
    SCOPED_TRACE("README.md:" + std::to_string(c.line) + ": " + c.text);
    std::string args = c.text.substr(c.text.find("lumpy") + 5);
    args = std::regex_replace(args, std::regex(" experiments/"), " '" + (kRoot / "experiments").string() + "'/");
    auto r = RunLumpy(args, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ++ran;
  }
  EXPECT_GE(ran, 3);
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "quick" / "report"));
}

}  // namespace
}  // namespace lumpy
