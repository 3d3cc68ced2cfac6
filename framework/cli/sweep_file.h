#pragma once
// What a `lumpy ablate` sweep folder's own files say, read as untrusted
// text: OUT/sweep.json (written by ablate, read back by --collect and the
// Slurm tasks) and each variant's summary.json (the table's cells). Any bytes
// give a sweep or a message naming the file, never a crash: a variant's name
// is one path component (core/name.h), a job id digits, seeds whole numbers
// in range; a summary value of the wrong JSON type is an empty cell.

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "engine_export.h"

namespace lumpy {

struct SweepVariant {
  std::string name;                      // folder under the output folder
  std::vector<std::string> assignments;  // key=value, without the seed
  int64_t seed = 0;
  std::vector<std::string> overrides;    // everything passed as --set
};

struct Sweep {
  std::string experiment;  // absolute
  std::vector<std::string> varies, sets;
  int seeds = 1;
  std::string executor = "local", job_id;
  std::filesystem::path dir;  // absolute (not in the file: where it was read)
  std::vector<SweepVariant> variants;
};

LUMPY_ENGINE_API nlohmann::json SweepToJson(const Sweep& sweep);

// sweep.json's text; FILE names it in messages. `dir` is left empty.
LUMPY_ENGINE_API absl::StatusOr<Sweep> ParseSweep(std::string_view text, const std::filesystem::path& file);

// A run or sweep folder's own JSON file (a variant's summary.json), read as
// an input file of its kind; discarded (is_discarded()) if missing, not a
// regular file, over the limit or not JSON.
nlohmann::json ReadRunJson(const std::filesystem::path& file);

// A string member of a run summary, or "" (not an object, missing, not a string).
LUMPY_ENGINE_API std::string SummaryString(const nlohmann::json& summary, const char* key);
// The names of the loss terms a run summary lists.
LUMPY_ENGINE_API std::set<std::string> SummaryTermNames(const nlohmann::json& summary);
// The metrics columns of its handlers' state (the penalty and each handler's
// own telemetry, whatever the plugin calls it), in the summary's order.
LUMPY_ENGINE_API std::vector<std::string> SummaryHandlerColumns(const nlohmann::json& summary);
// The ablation table's cells that a finished run's summary.json gives: steps,
// wall_time_s, loss, every term in TERM_NAMES, every handler column in
// HANDLER_COLUMNS (final values), omega_m, the held-out constraints' worst,
// H_mean_today, shear_sq_today.
LUMPY_ENGINE_API void SummaryCells(const nlohmann::json& summary, const std::set<std::string>& term_names,
                  const std::vector<std::string>& handler_columns, std::map<std::string, std::string>* cell);

}  // namespace lumpy
