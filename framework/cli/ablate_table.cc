#include "cli/ablate_table.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/figures.h"
#include "cli/markdown.h"
#include "cli/run_folder.h"
#include "core/atomic_file.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// The table's contents: a header (fixed columns, then every loss term's
// final value) and one row per variant.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int failures = 0, pending = 0;
};

Table CollectTable(const Sweep& sweep, const std::vector<TaskState>& states) {
  const auto& variants = sweep.variants;
  std::vector<nlohmann::json> summaries(variants.size());
  std::set<std::string> term_names;
  std::vector<std::string> handler_columns;
  for (size_t i = 0; i < variants.size(); ++i) {
    summaries[i] = ReadRunJson(sweep.dir / variants[i].name / "summary.json");
    for (const auto& name : SummaryTermNames(summaries[i])) term_names.insert(name);
    for (const auto& c : SummaryHandlerColumns(summaries[i])) {
      if (std::find(handler_columns.begin(), handler_columns.end(), c) == handler_columns.end()) {
        handler_columns.push_back(c);
      }
    }
  }
  Table t;
  t.header = {"variant", "seed", "status", "steps", "wall_time_s", "loss"};
  for (const auto& name : term_names) t.header.push_back(name);
  // The handlers' final state (a multiplier, a penalty weight, an adaptive
  // weight: each handler's own columns), after the terms.
  for (const auto& c : handler_columns) {
    if (!term_names.count(c)) t.header.push_back(c);
  }
  for (const char* c : {"held_out_max_violation", "held_out_worst_constraint", "held_out_ricci_min",
                        "omega_m", "H_mean_today", "shear_sq_today", "error"}) {
    t.header.push_back(c);
  }
  auto unfinished_state = [](const TaskState& st) {
    return st.state == "pending" || st.state == "running" || st.state == "interrupted";
  };
  for (const auto& st : states) t.pending += unfinished_state(st);
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& s = summaries[i];
    std::map<std::string, std::string> cell;
    cell["variant"] = absl::StrJoin(variants[i].assignments, " ");
    cell["seed"] = absl::StrCat(variants[i].seed);
    const TaskState& state = states[i];
    const bool unfinished = unfinished_state(state);
    const bool ok = !unfinished && state.exit_code == 0 && s.is_object();
    t.failures += !ok && !unfinished;
    cell["status"] = unfinished ? state.state : !SummaryString(s, "status").empty() ? SummaryString(s, "status") : "failed";
    if (!ok && !unfinished) {
      if (!SummaryString(s, "error").empty()) {
        cell["error"] = SummaryString(s, "error");
      } else {  // no summary to say why: the log's last line does
        const auto last = LastLogLines(sweep.dir / (variants[i].name + ".log"), 1);
        cell["error"] = last.empty() ? std::string() : last[0];
      }
    }
    if (s.is_object() && !unfinished) SummaryCells(s, term_names, handler_columns, &cell);
    std::vector<std::string> row;
    for (const auto& h : t.header) row.push_back(cell[h]);
    t.rows.push_back(row);
  }
  return t;
}

absl::Status WriteCsvTable(const fs::path& path, const Table& t) {
  auto csv_field = [](const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
    return q + "\"";
  };
  std::ostringstream csv;
  for (size_t j = 0; j < t.header.size(); ++j) csv << (j ? "," : "") << t.header[j];
  csv << "\n";
  for (const auto& r : t.rows) {
    for (size_t j = 0; j < r.size(); ++j) csv << (j ? "," : "") << csv_field(r[j]);
    csv << "\n";
  }
  return WriteAtomically(path, csv.str());
}

// Over seeds: per variant run on more than one seed, each numeric column's
// mean ± sample standard deviation over its finished runs (n of them), as a
// markdown table; "" when no variant has two finished seeds.
std::string SeedSummary(const Table& t) {
  const auto col = [&](const std::string& name) {
    return std::find(t.header.begin(), t.header.end(), name) - t.header.begin();
  };
  const size_t variant = col("variant"), status = col("status");
  std::vector<std::string> order;
  std::map<std::string, std::vector<const std::vector<std::string>*>> runs;
  for (const auto& r : t.rows) {
    if (r[status] != "completed" && r[status] != "stopped") continue;
    if (!runs.count(r[variant])) order.push_back(r[variant]);
    runs[r[variant]].push_back(&r);
  }
  bool any = false;
  for (const auto& [v, rs] : runs) any |= rs.size() > 1;
  if (!any) return "";
  std::vector<size_t> numeric;
  const std::set<std::string> skip = {"variant", "seed", "status", "held_out_worst_constraint", "error"};
  for (size_t j = 0; j < t.header.size(); ++j) {
    if (!skip.count(t.header[j])) numeric.push_back(j);
  }
  std::ostringstream md;
  md << "\n## Over seeds (mean ± standard deviation over the finished runs)\n\n| variant | n |";
  for (size_t j : numeric) md << " " << t.header[j] << " |";
  md << "\n| --- | --- |";
  for (size_t j = 0; j < numeric.size(); ++j) md << " --- |";
  md << "\n";
  for (const auto& v : order) {
    const auto& rs = runs[v];
    md << "| " << MarkdownCell(v) << " | " << rs.size() << " |";
    for (size_t j : numeric) {
      std::vector<double> x;
      for (const auto* r : rs) {
        char* end = nullptr;
        const std::string& cell = (*r)[j];
        const double value = std::strtod(cell.c_str(), &end);
        if (!cell.empty() && end != nullptr && *end == '\0' && std::isfinite(value)) x.push_back(value);
      }
      if (x.empty()) {
        md << " |";
        continue;
      }
      double mean = 0;
      for (double value : x) mean += value / static_cast<double>(x.size());
      double ss = 0;
      for (double value : x) ss += (value - mean) * (value - mean);
      md << " " << absl::StrFormat("%.4g", mean);
      if (x.size() > 1) md << absl::StrFormat(" ± %.2g", std::sqrt(ss / static_cast<double>(x.size() - 1)));
      if (x.size() != rs.size()) md << " (n=" << x.size() << ")";
      md << " |";
    }
    md << "\n";
  }
  return md.str();
}

absl::Status WriteMarkdownTable(const fs::path& path, const Sweep& sweep, const Table& t) {
  std::ostringstream md;
  md << "# Ablation of " << sweep.experiment << "\n\n";
  md << "Varied: " << absl::StrJoin(sweep.varies, "; ") << "; seeds: " << sweep.seeds
     << "; executor: " << sweep.executor << (sweep.job_id.empty() ? "" : " (job " + sweep.job_id + ")")
     << ". One run folder per row under this folder (`<variant>/`, log `<variant>.log`).\n"
     << "Loss terms are their final values as configured (a supernova term with the reference "
        "reduction is chi^2 per supernova); held-out values are on the grid of [certify]; "
        "H_mean and shear today at the observer's event ([observer] event).\n\n";
  md << "| " << absl::StrJoin(t.header, " | ") << " |\n|";
  for (size_t j = 0; j < t.header.size(); ++j) md << " --- |";
  md << "\n";
  for (const auto& r : t.rows) {
    std::vector<std::string> cells;
    for (const auto& v : r) cells.push_back(MarkdownCell(v));
    md << "| " << absl::StrJoin(cells, " | ") << " |\n";
  }
  md << SeedSummary(t);
  md << "\n![ablation](ablation.png)\n";
  return WriteAtomically(path, md.str());
}

}  // namespace

absl::StatusOr<int> WriteAblationTable(const Sweep& sweep, const std::vector<TaskState>& states) {
  const fs::path& dir = sweep.dir;
  const Table t = CollectTable(sweep, states);
  // Both files are written before the first failure is told.
  for (const auto& st : {WriteCsvTable(dir / "ablation.csv", t), WriteMarkdownTable(dir / "ablation.md", sweep, t)}) {
    if (!st.ok()) return absl::UnavailableError(absl::StrCat("lumpy ablate: ", st.message()));
  }
  // The figure, if Python's matplotlib is there.
  std::string why;
  if (!RunFigureScript("ablation_figure.py", {(dir / "ablation.csv").string(), (dir / "ablation.png").string()},
                       &why)) {
    std::cerr << "warning: no figure: " << why << std::endl;
  }
  std::cerr << "table: " << (dir / "ablation.md").string() << ", " << (dir / "ablation.csv").string()
            << (t.failures ? absl::StrCat("; ", t.failures, " run(s) failed (see the error column)") : "")
            << (t.pending ? absl::StrCat("; ", t.pending, " not finished yet (lumpy ablate --collect ", dir.string(),
                                          " later)")
                          : "")
            << std::endl;
  return t.failures;
}

}  // namespace lumpy
