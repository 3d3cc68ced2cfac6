// The fuzz harnesses (fuzz/*_fuzz.cc) in the ordinary test suite: every input
// a fuzzer ever crashed on (fuzz/crashes/<harness>/, kept with its fix) and
// every seed (fuzz/corpus/<harness>/) goes through the harness's properties
// again, in this build (no clang, no libFuzzer needed). A broken property
// aborts the test.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_util.h"

namespace lumpy::fuzz {
namespace {

namespace fs = std::filesystem;

struct Harness {
  const char* name;
  int (*run)(const uint8_t*, size_t);
};

void PrintTo(const Harness& harness, std::ostream* os) { *os << harness.name; }

class FuzzRegression : public ::testing::TestWithParam<Harness> {};

TEST_P(FuzzRegression, EveryKeptCrashAndSeedHoldsItsProperties) {
  const fs::path root = LUMPY_TEST_FUZZ_DIR;
  int inputs = 0;
  for (const char* kind : {"crashes", "corpus"}) {
    const fs::path dir = root / kind / GetParam().name;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().filename() != ".gitkeep") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      SCOPED_TRACE(file.string());
      std::ifstream in(file, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_EQ(GetParam().run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
      ++inputs;
    }
  }
  EXPECT_GT(inputs, 0) << "no seeds under " << root;  // the corpus ships with the repository
}

INSTANTIATE_TEST_SUITE_P(Harnesses, FuzzRegression,
                         ::testing::Values(Harness{"experiment", &ExperimentInput},
                                           Harness{"table", &TableInput},
                                           Harness{"catalogue", &CatalogueInput},
                                           Harness{"checkpoint", &CheckpointInput},
                                           Harness{"run_files", &RunFilesInput}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace lumpy::fuzz
