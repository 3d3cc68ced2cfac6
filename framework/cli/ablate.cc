#include "cli/ablate.h"
#include "cli/figures.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "config/experiment.h"
#include "loader/plugin_loader.h"

extern char** environ;

namespace lumpy {

namespace fs = std::filesystem;

std::vector<std::string> SplitValues(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  char quote = 0;
  for (char ch : text) {
    if (quote) {
      if (ch == quote) quote = 0;
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
    } else if (ch == '[' || ch == '{') {
      ++depth;
    } else if (ch == ']' || ch == '}') {
      --depth;
    } else if (ch == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur.push_back(ch);
  }
  out.push_back(cur);
  return out;
}

namespace {

struct Variant {
  std::string name;                      // folder under the output folder
  std::vector<std::string> assignments;  // key=value, without the seed
  int64_t seed = 0;
  std::vector<std::string> overrides;    // everything passed as --set
};

std::string Slug(const std::string& value) {
  std::string s;
  for (char c : value) s.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_');
  while (!s.empty() && s.back() == '_') s.pop_back();
  return s.substr(0, 40);
}

// Runs `lumpy run` for one variant, output to its log; returns the pid.
pid_t Spawn(const fs::path& exe, const std::string& experiment, const Variant& v, const fs::path& dir) {
  std::vector<std::string> args = {exe.string(), "run", experiment};
  for (const auto& o : v.overrides) {
    args.push_back("--set");
    args.push_back(o);
  }
  args.push_back("--out");
  args.push_back((dir / v.name).string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = (dir / (v.name + ".log")).string();
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  if (posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

std::string LastLine(const fs::path& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '[') last = line;  // skip progress lines
  }
  return last;
}

std::string Cell(const nlohmann::json& v) {
  if (v.is_number()) return absl::StrFormat("%.6g", v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return "";
}

}  // namespace

int RunAblation(const AblateOptions& o) {
  constexpr int kConfig = 2;
  if (o.varies.empty()) {
    std::cerr << "--vary: give at least one, e.g. --vary loss.wec.constraint.plugin=linear,augmented_lagrangian" << std::endl;
    return kConfig;
  }
  if (fs::exists(o.out) && !fs::is_empty(o.out)) {
    std::cerr << o.out << ": exists and is not empty; choose another --out (runs are never overwritten)" << std::endl;
    return kConfig;
  }
  // The grid of assignments.
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;
  for (const auto& v : o.varies) {
    const size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      std::cerr << "--vary " << v << ": expected KEY=V1,V2,... e.g. --vary optimizer.lr=1e-4,1e-3" << std::endl;
      return kConfig;
    }
    axes.push_back({v.substr(0, eq), SplitValues(v.substr(eq + 1))});
  }
  std::vector<std::vector<std::string>> grid = {{}};
  for (const auto& [key, values] : axes) {
    std::vector<std::vector<std::string>> next;
    for (const auto& partial : grid) {
      for (const auto& value : values) {
        auto p = partial;
        p.push_back(absl::StrCat(key, "=", value));
        next.push_back(p);
      }
    }
    grid = next;
  }
  // Validate every variant before anything runs.
  Registry registry;
  PluginLoader loader(registry);
  if (auto st = loader.LoadDefaults(); !st.ok()) {
    std::cerr << st.message() << std::endl;
    return 1;
  }
  auto base = LoadExperiment(o.experiment, o.sets, loader, registry);
  if (!base.ok()) {
    std::cerr << base.status().message() << std::endl;
    return kConfig;
  }
  const int64_t base_seed = base->runtime.GetInt("seed");
  bool varies_threads = false;
  for (const auto& [key, values] : axes) varies_threads |= key == "runtime.threads";
  for (const auto& s : o.sets) varies_threads |= s.rfind("runtime.threads=", 0) == 0;
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, cores / std::max(1, o.jobs));
  std::vector<Variant> variants;
  for (size_t i = 0; i < grid.size(); ++i) {
    std::vector<std::string> slugs;
    for (const auto& a : grid[i]) slugs.push_back(Slug(a.substr(a.find('=') + 1)));
    for (int s = 0; s < o.seeds; ++s) {
      Variant v;
      v.assignments = grid[i];
      v.seed = base_seed + s;
      v.name = absl::StrCat(absl::StrFormat("v%02d-", i + 1), absl::StrJoin(slugs, "-"), "-seed", v.seed);
      v.overrides = o.sets;
      v.overrides.insert(v.overrides.end(), grid[i].begin(), grid[i].end());
      v.overrides.push_back(absl::StrCat("runtime.seed=", v.seed));
      v.overrides.push_back("telemetry.progress=false");
      if (!varies_threads) v.overrides.push_back(absl::StrCat("runtime.threads=", threads));
      auto exp = LoadExperiment(o.experiment, v.overrides, loader, registry);
      if (!exp.ok()) {
        std::cerr << "--vary " << absl::StrJoin(grid[i], " ") << ": " << exp.status().message() << std::endl;
        return kConfig;
      }
      variants.push_back(v);
    }
  }
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) {
    std::cerr << o.out << ": cannot create: " << ec.message() << std::endl;
    return 1;
  }
  const fs::path dir = fs::absolute(o.out);
  const fs::path exe(boost::dll::program_location().string());
  const fs::path experiment = fs::absolute(o.experiment);
  std::cerr << "lumpy ablate: " << variants.size() << " run(s), " << o.jobs << " at a time, "
            << (varies_threads ? std::string("threads as given") : absl::StrCat(threads, " thread(s) each"))
            << " -> " << dir.string() << std::endl;

  // Run them, `jobs` at a time.
  std::map<pid_t, size_t> running;
  std::vector<int> exit_code(variants.size(), -1);
  size_t next = 0, done = 0;
  while (done < variants.size()) {
    while (next < variants.size() && static_cast<int>(running.size()) < std::max(1, o.jobs)) {
      pid_t pid = Spawn(exe, experiment.string(), variants[next], dir);
      if (pid < 0) {
        exit_code[next] = 127;
        ++done;
      } else {
        running[pid] = next;
        std::cerr << "  started " << variants[next].name << std::endl;
      }
      ++next;
    }
    if (running.empty()) continue;
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    exit_code[it->second] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::cerr << "  " << (exit_code[it->second] == 0 ? "finished " : "FAILED   ")
              << variants[it->second].name << " (" << ++done << "/" << variants.size() << ")" << std::endl;
    running.erase(it);
  }

  // The table: fixed columns, then every loss term's final value.
  std::vector<nlohmann::json> summaries(variants.size());
  std::set<std::string> term_names;
  for (size_t i = 0; i < variants.size(); ++i) {
    std::ifstream in(dir / variants[i].name / "summary.json");
    if (in) summaries[i] = nlohmann::json::parse(in, nullptr, false);
    if (summaries[i].is_object() && summaries[i].contains("terms")) {
      for (const auto& [name, plugin] : summaries[i]["terms"].items()) term_names.insert(name);
    }
  }
  std::vector<std::string> header = {"variant", "seed", "status", "steps", "wall_time_s", "loss"};
  for (const auto& t : term_names) header.push_back(t);
  for (const char* c : {"held_out_max_violation", "held_out_worst_constraint", "held_out_ricci_min",
                        "omega_m", "H_mean_today", "shear_sq_today", "error"}) {
    header.push_back(c);
  }
  std::vector<std::vector<std::string>> rows;
  int failures = 0;
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& s = summaries[i];
    std::map<std::string, std::string> cell;
    cell["variant"] = absl::StrJoin(variants[i].assignments, " ");
    cell["seed"] = absl::StrCat(variants[i].seed);
    const bool ok = exit_code[i] == 0 && s.is_object();
    failures += !ok;
    cell["status"] = s.is_object() && s.contains("status") ? s["status"].get<std::string>() : "failed";
    if (!ok) {
      cell["error"] = s.is_object() && s.contains("error") ? s["error"].get<std::string>()
                                                           : LastLine(dir / (variants[i].name + ".log"));
    }
    if (s.is_object()) {
      cell["steps"] = Cell(s.value("steps", nlohmann::json()));
      cell["wall_time_s"] = Cell(s.value("wall_time_s", nlohmann::json()));
      if (s.contains("final")) {
        const auto& f = s["final"];
        cell["loss"] = Cell(f.value("loss", nlohmann::json()));
        for (const auto& t : term_names) cell[t] = Cell(f.value(t, nlohmann::json()));
        for (const auto& [k, v] : f.items()) {
          if (k.size() > 8 && k.substr(k.size() - 8) == ".omega_m") cell["omega_m"] = Cell(v);
        }
      }
      if (s.contains("held_out")) {
        double worst = -INFINITY, r_min = INFINITY;
        std::string worst_name;
        for (const auto& [domain, d] : s["held_out"].items()) {
          if (d.contains("ricci_min") && d["ricci_min"].is_number()) r_min = std::min(r_min, d["ricci_min"].get<double>());
          for (const auto& [name, c] : d["constraints"].items()) {
            if (c["max"].is_number() && c["max"].get<double>() > worst) {
              worst = c["max"].get<double>();
              worst_name = name;
            }
          }
        }
        if (std::isfinite(worst)) cell["held_out_max_violation"] = absl::StrFormat("%.6g", worst);
        cell["held_out_worst_constraint"] = worst_name;
        if (std::isfinite(r_min)) cell["held_out_ricci_min"] = absl::StrFormat("%.6g", r_min);
      }
      if (s.contains("observer") && s["observer"].contains("H_mean")) {
        cell["H_mean_today"] = Cell(s["observer"]["H_mean"]);
        cell["shear_sq_today"] = Cell(s["observer"]["shear_sq"]);
      }
    }
    std::vector<std::string> row;
    for (const auto& h : header) row.push_back(cell[h]);
    rows.push_back(row);
  }
  auto csv_field = [](const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
    return q + "\"";
  };
  {
    std::ofstream csv(dir / "ablation.csv");
    for (size_t j = 0; j < header.size(); ++j) csv << (j ? "," : "") << header[j];
    csv << "\n";
    for (const auto& r : rows) {
      for (size_t j = 0; j < r.size(); ++j) csv << (j ? "," : "") << csv_field(r[j]);
      csv << "\n";
    }
  }
  {
    std::ofstream md(dir / "ablation.md");
    md << "# Ablation of " << o.experiment << "\n\n";
    md << "Varied: " << absl::StrJoin(o.varies, "; ") << "; seeds: " << o.seeds
       << ". One run folder per row under this folder (`<variant>/`, log `<variant>.log`).\n"
       << "Loss terms are their final values as configured (a supernova term with the reference "
          "reduction is chi^2 per supernova); held-out values are on the grid of [certify]; "
          "H_mean and shear today at the observer (1,0,0,0).\n\n";
    md << "| " << absl::StrJoin(header, " | ") << " |\n|";
    for (size_t j = 0; j < header.size(); ++j) md << " --- |";
    md << "\n";
    for (const auto& r : rows) {
      std::vector<std::string> esc;
      for (auto v : r) {
        for (size_t p = v.find('|'); p != std::string::npos; p = v.find('|', p + 2)) v.replace(p, 1, "\\|");
        esc.push_back(v);
      }
      md << "| " << absl::StrJoin(esc, " | ") << " |\n";
    }
    md << "\n![ablation](ablation.png)\n";
  }
  // The figure, if Python's matplotlib is there.
  std::string why;
  if (!RunFigureScript("ablation_figure.py", {(dir / "ablation.csv").string(), (dir / "ablation.png").string()},
                       &why)) {
    std::cerr << "warning: no figure: " << why << std::endl;
  }
  std::cerr << "table: " << (dir / "ablation.md").string() << ", " << (dir / "ablation.csv").string()
            << (failures ? absl::StrCat("; ", failures, " run(s) failed (see the error column)") : "") << std::endl;
  return failures ? 1 : 0;
}

}  // namespace lumpy
