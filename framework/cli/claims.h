#pragma once
// `lumpy claims`: every claim of the posts, computed from result folders.
//
// A claim file (experiments/blog/claims/0N_*.toml) holds one post's claims
// about its own results, each with the post's words, the quantity, the
// post's value, a named measurement on a result folder (measurements.h)
// with its arguments, the stage's variants it applies to, and the rule that
// makes a verdict, with its tolerance stated up front:
//   negative, positive        the value's sign
//   at_most, at_least         value <= threshold (or >=); within `partly`: partly
//   within                    |value - target| <= tolerance x |target| (relative) or tolerance
//                             (absolute); within `partly` x ...: partly
//   exists                    the value is a number (a first step that happened)
//   not_testable              never measured; `reason` says why
// The study file (experiments/blog/study.toml) names the result folders of
// each stage and variant (one per seed). Per claim and variant the verdict
// is reproduced / partly / not reproduced over all seeds (seeds that
// disagree make it partly), or not testable with the reason (a folder that
// lacks what the measurement needs).
//
// Writes OUT/claims.md (a table per post) and OUT/claims.json. A claim that
// cannot be read or measured (an unknown measurement, a missing folder) is
// reported in its row and on stderr, and every other claim still is; the
// exit status is then 2.
#include <string>
#include <vector>

namespace lumpy {

struct ClaimsOptions {
  std::vector<std::string> claim_files;  // files or folders of *.toml
  std::string study;                     // the study file naming the result folders
  std::string out;                       // where claims.md and claims.json go
  std::string results;                   // the result folders' folder; empty: the study's
};

int RunClaims(const ClaimsOptions& options);

}  // namespace lumpy
