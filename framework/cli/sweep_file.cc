#include "cli/sweep_file.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/input_file.h"
#include "core/name.h"

namespace lumpy {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The member KEY of an object, or null.
const json& Member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string Cell(const json& v) {
  if (v.is_number()) return absl::StrFormat("%.6g", v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return "";
}

// A whole number in [lo, hi], or an error naming the member.
absl::StatusOr<int64_t> Whole(const json& v, const char* what, int64_t lo, int64_t hi) {
  if (v.is_number_integer()) {
    const bool in_range = v.is_number_unsigned()
                              ? v.get<uint64_t>() <= static_cast<uint64_t>(hi) &&
                                    (lo <= 0 || v.get<uint64_t>() >= static_cast<uint64_t>(lo))
                              : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (in_range) {
      return v.get<int64_t>();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(what, " is not a whole number from ", lo, " to ", hi));
}

void HeldOutCells(const json& held_out, std::map<std::string, std::string>* cell) {
  if (!held_out.is_object()) return;
  double worst = -INFINITY, r_min = INFINITY;
  std::string worst_name;
  for (const auto& [domain, d] : held_out.items()) {
    const json& ricci = Member(d, "ricci_min");
    if (ricci.is_number()) r_min = std::min(r_min, ricci.get<double>());
    const json& constraints = Member(d, "constraints");
    if (!constraints.is_object()) continue;
    for (const auto& [name, c] : constraints.items()) {
      const json& max = Member(c, "max");
      if (max.is_number() && max.get<double>() > worst) {
        worst = max.get<double>();
        worst_name = name;
      }
    }
  }
  if (std::isfinite(worst)) (*cell)["held_out_max_violation"] = absl::StrFormat("%.6g", worst);
  (*cell)["held_out_worst_constraint"] = worst_name;
  if (std::isfinite(r_min)) (*cell)["held_out_ricci_min"] = absl::StrFormat("%.6g", r_min);
}

}  // namespace

json ReadRunJson(const std::filesystem::path& file) {
  auto text = ReadInputFile(file, InputKind::kRunFile, "run file");
  if (!text.ok()) return json::value_t::discarded;
  return json::parse(*text, nullptr, false);
}

json SweepToJson(const Sweep& s) {
  json j = {{"experiment", s.experiment}, {"varies", s.varies}, {"sets", s.sets},
            {"seeds", s.seeds},           {"executor", s.executor}, {"job_id", s.job_id},
            {"variants", json::array()}};
  for (const auto& v : s.variants) {
    j["variants"].push_back({{"name", v.name}, {"assignments", v.assignments}, {"seed", v.seed}, {"overrides", v.overrides}});
  }
  return j;
}

absl::StatusOr<Sweep> ParseSweep(std::string_view text, const fs::path& file) {
  auto damaged = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": damaged (", why, ")"));
  };
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("variants")) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": damaged (not the JSON lumpy ablate writes)"));
  }
  Sweep s;
  try {
    s.experiment = j.at("experiment").get<std::string>();
    s.varies = j.at("varies").get<std::vector<std::string>>();
    s.sets = j.at("sets").get<std::vector<std::string>>();
    auto seeds = Whole(j.at("seeds"), "seeds", 1, std::numeric_limits<int>::max());
    if (!seeds.ok()) return damaged(std::string(seeds.status().message()));
    s.seeds = static_cast<int>(*seeds);
    s.executor = j.at("executor").get<std::string>();
    s.job_id = j.at("job_id").get<std::string>();
    if (!j.at("variants").is_array()) return damaged("variants is not a list");
    for (const auto& v : j.at("variants")) {
      SweepVariant variant{v.at("name").get<std::string>(), v.at("assignments").get<std::vector<std::string>>(), 0,
                           v.at("overrides").get<std::vector<std::string>>()};
      auto seed = Whole(v.at("seed"), "a variant's seed", 0, std::numeric_limits<int64_t>::max());
      if (!seed.ok()) return damaged(std::string(seed.status().message()));
      variant.seed = *seed;
      // A variant's name is its folder under the sweep's: a name, never a path.
      if (!IsOneName(variant.name)) {
        return damaged(absl::StrCat("variant name \"", variant.name.substr(0, 80),
                                    "\" is not one path component of printable characters"));
      }
      s.variants.push_back(std::move(variant));
    }
  } catch (const json::exception& e) {
    return damaged(e.what());
  }
  if (s.executor != "local" && s.executor != "slurm") {
    return damaged(absl::StrCat("executor \"", s.executor.substr(0, 40), "\" is neither local nor slurm"));
  }
  // A Slurm job id is digits (sbatch --parsable prints it): anything else in
  // a sweep.json was not written by lumpy ablate.
  if (!s.job_id.empty() && s.job_id.find_first_not_of("0123456789") != std::string::npos) {
    return damaged(absl::StrCat("job_id \"", s.job_id.substr(0, 40), "\" is not a Slurm job id"));
  }
  return s;
}

std::string SummaryString(const json& summary, const char* key) {
  const json& v = Member(summary, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::set<std::string> SummaryTermNames(const json& summary) {
  std::set<std::string> names;
  const json& terms = Member(summary, "terms");
  if (terms.is_object()) {
    for (const auto& [name, plugin] : terms.items()) names.insert(name);
  }
  return names;
}

std::vector<std::string> SummaryHandlerColumns(const json& summary) {
  std::vector<std::string> columns;
  const json& handlers = Member(Member(summary, "telemetry_columns"), "handlers");
  if (!handlers.is_object()) return columns;
  for (const auto& [term, list] : handlers.items()) {
    if (!list.is_array()) continue;
    for (const auto& c : list) {
      if (c.is_string()) columns.push_back(c.get<std::string>());
    }
  }
  return columns;
}

void SummaryCells(const json& s, const std::set<std::string>& term_names,
                  const std::vector<std::string>& handler_columns, std::map<std::string, std::string>* cell) {
  (*cell)["steps"] = Cell(Member(s, "steps"));
  (*cell)["wall_time_s"] = Cell(Member(s, "wall_time_s"));
  const json& f = Member(s, "final");
  if (f.is_object()) {
    (*cell)["loss"] = Cell(Member(f, "loss"));
    for (const auto& t : term_names) (*cell)[t] = Cell(Member(f, t.c_str()));
    for (const auto& c : handler_columns) (*cell)[c] = Cell(Member(f, c.c_str()));
    for (const auto& [k, v] : f.items()) {
      if (k.size() > 8 && k.substr(k.size() - 8) == ".omega_m") (*cell)["omega_m"] = Cell(v);
    }
  }
  HeldOutCells(Member(s, "held_out"), cell);
  const json& observer = Member(s, "observer");
  if (Member(observer, "H_mean").is_number()) {
    (*cell)["H_mean_today"] = Cell(Member(observer, "H_mean"));
    (*cell)["shear_sq_today"] = Cell(Member(observer, "shear_sq"));
  }
}

}  // namespace lumpy
