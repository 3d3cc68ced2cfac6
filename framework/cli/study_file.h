#pragma once
// The study file (experiments/blog/study.toml): which runs make the blog's
// results. `lumpy study` runs what is missing and collects each run into
// its result folder; `lumpy claims` reads the result folders it names.
//
//   results = "results"          # the result folders' folder, relative to the study file
//   claims = "claims"            # the claim files' folder, relative to the study file
//   [[run]]
//   name = "p1_corrected_s1"     # its result folder's name: one path component
//   stage = 1                    # the post (claims of post N read stage N's runs)
//   variant = "corrected"        # e.g. corrected, as_run
//   seed = 1
//   experiment = "01_tabula_rasa.toml"   # relative to the study file
//   set = ["runtime.steps=2000"]         # optional overrides
//   sky = true                   # optional: also the real-sky check when collected
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lumpy {

struct StudyRun {
  std::string name, variant;
  int64_t stage = 0, seed = 1;
  std::filesystem::path experiment;  // absolute or relative to the working folder
  std::vector<std::string> set;
  bool sky = false;   // also the real-sky check (lumpy sky) when collected
  std::string error;  // a stage file that does not exist (located): this run cannot run
};

struct Study {
  std::filesystem::path file, results, claims;
  std::vector<StudyRun> runs;
  // The result folders of a stage's variant, in the file's order.
  std::vector<const StudyRun*> RunsOf(int64_t stage, const std::string& variant) const;
};

// Located errors (InvalidArgument "FILE:LINE:COL: key: ..."): unknown keys,
// a name that is not one path component, two runs with one name. A stage
// file that does not exist is that run's `error` (located): the study runs
// every other run and the claims read every result folder that exists.
absl::StatusOr<Study> LoadStudy(const std::filesystem::path& file);

}  // namespace lumpy
