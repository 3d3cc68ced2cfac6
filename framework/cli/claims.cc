#include <torch/torch.h>

#include "cli/claims.h"
#include "cli/markdown.h"

#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/exit_status.h"
#include "cli/measurements.h"
#include "cli/study_file.h"
#include "config/config_tree.h"
#include "config/experiment.h"
#include "core/atomic_file.h"
#include "core/input_file.h"
#include "lumpy/params.h"
#include "lumpy/status_macros.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

const ParamSpecs& FileSpecs() {
  static const ParamSpecs specs = {
      ParamSpec::Int("post", "the post's part").AtLeast(1),
      ParamSpec::String("title", "the post's title"),
      ParamSpec::String("commit", "the reference repository's commit of the post"),
      ParamSpec::String("file", "the post's file at that commit"),
  };
  return specs;
}

const ParamSpecs& ClaimSpecs() {
  static const ParamSpecs specs = {
      ParamSpec::String("id", "short, unique"),
      ParamSpec::String("words", "the post's words (short)"),
      ParamSpec::String("where", "the post's section or figure").Default(std::string("")),
      ParamSpec::String("quantity", "what the claim is about"),
      ParamSpec::String("post_value", "the post's number, sign or trend").Default(std::string("qualitative")),
      ParamSpec::String("measurement", "a named measurement (see lumpy claims --help), or none")
          .Default(std::string("none"))
          .OneOf([] {
            auto names = MeasurementNames();
            names.push_back("none");
            return names;
          }()),
      ParamSpec::String("column", "the measurement's column (metrics, probe) or JSON pointer (summary)")
          .Default(std::string("")),
      ParamSpec::Double("equals", "the value first_step_equal and tail_fraction_equal look for").Default(0.0),
      ParamSpec::Double("tail", "tail_fraction_equal: the last fraction of the run").Default(0.2).Greater(0).AtMost(1),
      ParamSpec::Double("at", "worldline_at: the time").Default(1.0),
      ParamSpec::String("plane", "plane_*: xy, yz, xz or all").Default(std::string("all")).OneOf({"xy", "yz", "xz", "all"}),
      ParamSpec::String("checkpoint", "the model the model-based measurements probe")
          .Default(std::string("final"))
          .OneOf({"final", "best"}),
      ParamSpec::String("rule", "how the value makes a verdict")
          .OneOf({"negative", "positive", "at_most", "at_least", "within", "exists", "not_testable"}),
      ParamSpec::Double("threshold", "at_most / at_least: reproduced up to (from) here").Default(0.0),
      ParamSpec::Double("partly", "at_most / at_least: partly up to (from) here; within: partly within this "
                                  "tolerance").Optional(),
      ParamSpec::Double("target", "within: the post's value").Default(0.0),
      ParamSpec::Double("tolerance", "within: reproduced within this").Default(0.0).AtLeast(0),
      ParamSpec::Bool("relative", "within: the tolerance relative to |target|").Default(true),
      ParamSpec::StringList("variants", "the stage's variants it applies to (the study's run variants)")
          .Default(std::vector<std::string>{"corrected", "as_run"}),
      ParamSpec::String("reason", "not_testable: why; otherwise a note").Default(std::string("")),
  };
  return specs;
}

struct Claim {
  std::string file, id, words, where, quantity, post_value, measurement, rule, reason, location;
  int64_t post = 0;
  MeasurementArgs args;
  double threshold = 0, target = 0, tolerance = 0;
  std::optional<double> partly;
  bool relative = true;
  std::vector<std::string> variants;
  std::string error;  // the claim could not be read
};

struct Post {
  int64_t part = 0;
  std::string title, commit, file;
  std::vector<Claim> claims;
};

// The claims of one file; a claim that fails validation keeps its error.
absl::StatusOr<Post> LoadClaimFile(const fs::path& file) {
  LUMPY_ASSIGN_OR_RETURN(auto root, ParseTomlFile(file));
  LUMPY_ASSIGN_OR_RETURN(auto top, ValidateTable(root, FileSpecs(), "", {"claim"}));
  Post post;
  post.part = top.GetInt("post");
  post.title = top.GetString("title");
  post.commit = top.GetString("commit");
  post.file = top.GetString("file");
  ConfigNode* claims = root.Find("claim");
  if (claims == nullptr || !claims->is_array()) return post;
  for (size_t i = 0; i < claims->items().size(); ++i) {
    ConfigNode& node = claims->mutable_items()[i];
    Claim c;
    c.file = file.filename().string();
    c.post = post.part;
    c.location = node.location().ToString();
    const ConfigNode* id = node.Find("id");
    c.id = id && id->kind() == ConfigNode::Kind::kString ? id->as_string() : absl::StrCat("claim[", i, "]");
    auto p = ValidateTable(node, ClaimSpecs(), absl::StrCat("claim[", i, "]"), {});
    if (!p.ok()) {
      c.error = std::string(p.status().message());
      post.claims.push_back(c);
      continue;
    }
    c.words = p->GetString("words");
    c.where = p->GetString("where");
    c.quantity = p->GetString("quantity");
    c.post_value = p->GetString("post_value");
    c.measurement = p->GetString("measurement");
    c.rule = p->GetString("rule");
    c.reason = p->GetString("reason");
    c.args.column = p->GetString("column");
    c.args.equals = p->GetDouble("equals");
    c.args.tail = p->GetDouble("tail");
    c.args.at = p->GetDouble("at");
    c.args.plane = p->GetString("plane");
    c.args.checkpoint = p->GetString("checkpoint");
    c.threshold = p->GetDouble("threshold");
    if (p->Has("partly")) c.partly = p->GetDouble("partly");
    c.target = p->GetDouble("target");
    c.tolerance = p->GetDouble("tolerance");
    c.relative = p->GetBool("relative");
    c.variants = p->GetStringList("variants");
    if (c.rule != "not_testable" && c.measurement == "none") {
      c.error = absl::StrCat(c.location, ": claim[", i, "].measurement: rule \"", c.rule,
                             "\" needs a measurement (or rule = \"not_testable\" with a reason)");
    }
    post.claims.push_back(c);
  }
  return post;
}

enum class Verdict { kReproduced, kPartly, kNot, kUntestable };
const char* Text(Verdict v) {
  switch (v) {
    case Verdict::kReproduced: return "reproduced";
    case Verdict::kPartly: return "partly";
    case Verdict::kNot: return "not reproduced";
    default: return "not testable";
  }
}

Verdict Judge(const Claim& c, double v) {
  if (c.rule == "exists") return std::isfinite(v) ? Verdict::kReproduced : Verdict::kNot;
  if (!std::isfinite(v)) return Verdict::kNot;
  if (c.rule == "negative") return v < 0 ? Verdict::kReproduced : Verdict::kNot;
  if (c.rule == "positive") return v > 0 ? Verdict::kReproduced : Verdict::kNot;
  if (c.rule == "at_most") {
    if (v <= c.threshold) return Verdict::kReproduced;
    return c.partly && v <= *c.partly ? Verdict::kPartly : Verdict::kNot;
  }
  if (c.rule == "at_least") {
    if (v >= c.threshold) return Verdict::kReproduced;
    return c.partly && v >= *c.partly ? Verdict::kPartly : Verdict::kNot;
  }
  // within
  const double scale = c.relative ? std::abs(c.target) : 1.0;
  const double off = std::abs(v - c.target);
  if (off <= c.tolerance * scale) return Verdict::kReproduced;
  return c.partly && off <= *c.partly * scale ? Verdict::kPartly : Verdict::kNot;
}

// The rule in words, with its tolerance: "< 0", "<= 0.06 (partly <= 0.2)".
std::string RuleText(const Claim& c) {
  auto num = [](double x) { return absl::StrFormat("%g", x); };
  if (c.rule == "negative") return "< 0";
  if (c.rule == "positive") return "> 0";
  if (c.rule == "exists") return "happens";
  if (c.rule == "not_testable") return "—";
  if (c.rule == "at_most") return absl::StrCat("≤ ", num(c.threshold), c.partly ? absl::StrCat(" (partly ≤ ", num(*c.partly), ")") : "");
  if (c.rule == "at_least") return absl::StrCat("≥ ", num(c.threshold), c.partly ? absl::StrCat(" (partly ≥ ", num(*c.partly), ")") : "");
  const std::string unit = c.relative ? "%" : "";
  auto tol = [&](double t) { return c.relative ? num(100 * t) + "%" : num(t); };
  return absl::StrCat(num(c.target), " ± ", tol(c.tolerance), c.partly ? absl::StrCat(" (partly ± ", tol(*c.partly), ")") : "");
}

// A claim's result on one variant: the values per seed and the verdict.
struct VariantResult {
  std::string variant;
  std::vector<std::pair<std::string, double>> values;  // folder, value
  Verdict verdict = Verdict::kUntestable;
  std::string why;
};

VariantResult Evaluate(const Claim& c, const Study& study, const std::string& variant,
                       std::map<std::string, std::unique_ptr<ResultFolder>>& folders, std::vector<std::string>* errors) {
  VariantResult r;
  r.variant = variant;
  if (c.rule == "not_testable") {
    r.why = c.reason.empty() ? "not measured" : c.reason;
    return r;
  }
  const auto runs = study.RunsOf(c.post, variant);
  if (runs.empty()) {
    r.why = absl::StrCat("the study has no ", variant, " run of stage ", c.post);
    return r;
  }
  int counts[4] = {0, 0, 0, 0};
  for (const StudyRun* run : runs) {
    const fs::path dir = study.results / run->name;
    if (!fs::is_directory(dir)) {
      const std::string e = absl::StrCat(c.id, " (", variant, "): result folder ", dir.string(),
                                         " is missing (lumpy study runs and collects it)");
      errors->push_back(e);
      r.why = e;
      r.verdict = Verdict::kUntestable;
      return r;
    }
    auto& folder = folders[run->name];
    if (!folder) folder = std::make_unique<ResultFolder>(dir);
    auto v = folder->Measure(c.measurement, c.args);
    if (!v.ok()) {
      if (absl::IsNotFound(v.status())) {
        r.why = std::string(v.status().message());
        return r;  // not testable from what was committed
      }
      const std::string e = absl::StrCat(c.id, " (", variant, "): ", v.status().message());
      errors->push_back(e);
      r.why = e;
      return r;
    }
    r.values.push_back({run->name, *v});
    ++counts[static_cast<int>(Judge(c, *v))];
  }
  const int n = static_cast<int>(runs.size());
  if (counts[0] == n) {
    r.verdict = Verdict::kReproduced;
  } else if (counts[2] == n) {
    r.verdict = Verdict::kNot;
  } else if (counts[1] == n) {
    r.verdict = Verdict::kPartly;
  } else {
    r.verdict = Verdict::kPartly;
    r.why = absl::StrCat("the seeds disagree: ", counts[0], " reproduced, ", counts[1], " partly, ", counts[2], " not");
  }
  return r;
}

std::string Values(const VariantResult& r) {
  if (r.values.empty()) return "—";
  std::vector<std::string> parts;
  for (const auto& [name, v] : r.values) parts.push_back(std::isfinite(v) ? absl::StrFormat("%.4g", v) : "never");
  if (parts.size() == 1) return parts[0];
  // Mean and standard deviation in two passes (one pass cancels: three
  // equal values gave a spread of 4e-9).
  double sum = 0;
  int finite = 0;
  for (const auto& [name, v] : r.values) {
    if (std::isfinite(v)) sum += v, ++finite;
  }
  std::string spread;
  if (finite > 1) {
    const double mean = sum / finite;
    double squares = 0;
    for (const auto& [name, v] : r.values) {
      if (std::isfinite(v)) squares += (v - mean) * (v - mean);
    }
    bool equal = true;  // equal values have no spread, whatever the rounding of their mean
    for (const auto& [name, v] : r.values) equal = equal && (!std::isfinite(v) || v == r.values.front().second);
    spread = absl::StrFormat(" (%.4g ± %.2g)", mean, equal ? 0.0 : std::sqrt(squares / finite));
  }
  return absl::StrCat(absl::StrJoin(parts, "; "), spread);
}

// A message with the result folders' folder named as the study file names
// it ("results/..."), so that claims.md reads the same wherever it is made.
std::string Shown(std::string msg, const Study& study, const std::string& results_name) {
  const std::string prefix = study.results.string();
  for (size_t p = msg.find(prefix); !prefix.empty() && p != std::string::npos; p = msg.find(prefix, p)) {
    msg.replace(p, prefix.size(), results_name);
    p += results_name.size();
  }
  return msg;
}

std::vector<fs::path> ClaimFiles(const std::vector<std::string>& args, const fs::path& fallback) {
  std::vector<fs::path> out;
  std::vector<fs::path> roots;
  for (const auto& a : args) roots.emplace_back(a);
  if (roots.empty()) roots.push_back(fallback);
  for (const auto& r : roots) {
    if (fs::is_directory(r)) {
      std::vector<fs::path> in;
      for (const auto& e : fs::directory_iterator(r)) {
        if (e.path().extension() == ".toml") in.push_back(e.path());
      }
      std::sort(in.begin(), in.end());
      out.insert(out.end(), in.begin(), in.end());
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// The posts of the claim files; a file that cannot be read adds its error.
std::vector<Post> LoadPosts(const std::vector<std::string>& claim_files, const Study& study,
                            std::vector<std::string>* errors) {
  std::vector<Post> posts;
  for (const auto& file : ClaimFiles(claim_files, study.claims)) {
    auto post = LoadClaimFile(file);
    if (!post.ok()) {
      errors->push_back(std::string(post.status().message()));
      continue;
    }
    posts.push_back(*post);
  }
  return posts;
}

constexpr char kClaimsHeading[] =
    "# The posts' claims, computed from the committed runs\n\n"
    "Generated by `lumpy claims` from `experiments/blog/claims/` and the result folders the study "
    "(`experiments/blog/study.toml`) names; do not edit by hand. Per claim: the post's words and value, "
    "ours per seed (mean ± spread where several), the rule with its tolerance, and the verdict; "
    "\"not testable\" says what the committed runs lack.\n";

// The claims' tables as they are made: claims.md's overview and body,
// claims.json, the tally of verdicts (claim × variant) and the errors.
struct Tables {
  Tables(const Study& s, std::string shown_as)
      : study(s),
        shown(std::move(shown_as)),
        json{{"study", s.file.filename().string()}, {"posts", nlohmann::json::array()}} {}
  const Study& study;
  std::string shown;  // the result folders' folder as the study file names it
  std::map<std::string, std::unique_ptr<ResultFolder>> folders;
  std::vector<std::string> errors;
  nlohmann::json json;
  std::string body, overview =
      "| part | claims | reproduced | partly | not reproduced | not testable |\n| --- | --- | --- | --- | --- | --- |\n";
  int tally[4] = {0, 0, 0, 0};
};

// A testable claim's verdict on each variant of its stage: into its JSON,
// its cells (ours, verdicts) and its post's notes.
void JudgeVariants(const Claim& c, Tables& t, nlohmann::json& jc, std::vector<std::string>& ours,
                   std::vector<std::string>& verdicts, std::vector<std::string>& notes) {
  for (const auto& v : c.variants) {
    if (t.study.RunsOf(c.post, v).empty()) continue;  // not a variant of this stage
    VariantResult r = Evaluate(c, t.study, v, t.folders, &t.errors);
    r.why = Shown(r.why, t.study, t.shown);
    ++t.tally[static_cast<int>(r.verdict)];
    nlohmann::json jv = {{"verdict", Text(r.verdict)}, {"why", r.why}, {"values", nlohmann::json::object()}};
    for (const auto& [name, x] : r.values) jv["values"][name] = std::isfinite(x) ? nlohmann::json(x) : nlohmann::json();
    jc[v] = jv;
    const std::string label = v == "as_run" ? "as run" : v;
    ours.push_back(absl::StrCat(label, ": ", Values(r)));
    verdicts.push_back(absl::StrCat(label, ": **", Text(r.verdict), "**"));
    if (!r.why.empty()) notes.push_back(absl::StrCat("`", c.id, "` (", label, "): ", r.why));
  }
}

// One claim: its row of its post's table, its notes, and its JSON (returned).
nlohmann::json AddClaim(const Claim& c, Tables& t, std::vector<std::string>& notes) {
  nlohmann::json jc = {{"id", c.id}, {"words", c.words}, {"quantity", c.quantity}, {"post_value", c.post_value}};
  if (!c.error.empty()) {
    t.errors.push_back(c.error);
    jc["error"] = c.error;
    absl::StrAppend(&t.body, "| `", MarkdownCell(c.id), "` | ", MarkdownCell(c.words), " | | | error: ", MarkdownCell(c.error), " | error |\n");
    return jc;
  }
  jc["measurement"] = c.measurement;
  jc["rule"] = RuleText(c);
  std::vector<std::string> ours, verdicts;
  if (c.rule == "not_testable") {  // one verdict for the claim, whatever the variants
    ++t.tally[static_cast<int>(Verdict::kUntestable)];
    jc["verdict"] = Text(Verdict::kUntestable);
    jc["why"] = c.reason;
    verdicts.push_back(Text(Verdict::kUntestable));
    notes.push_back(absl::StrCat("`", c.id, "`: ", c.reason.empty() ? "not measured" : c.reason));
  } else {
    JudgeVariants(c, t, jc, ours, verdicts, notes);
  }
  if (c.rule != "not_testable" && !c.reason.empty()) notes.push_back(absl::StrCat("`", c.id, "`: ", c.reason));
  absl::StrAppend(&t.body, "| `", MarkdownCell(c.id), "` | ", MarkdownCell(c.words), " | ", MarkdownCell(c.post_value), " | ",
                  MarkdownCell(c.rule == "not_testable" ? c.quantity : absl::StrCat(c.quantity, ": ", RuleText(c))), " | ",
                  ours.empty() ? "—" : MarkdownCell(absl::StrJoin(ours, "<br>")), " | ",
                  MarkdownCell(absl::StrJoin(verdicts, "<br>")), " |\n");
  return jc;
}

// One post: its section of claims.md (table, tally, notes), its overview row and its JSON.
void AddPost(const Post& post, Tables& t) {
  const int before[4] = {t.tally[0], t.tally[1], t.tally[2], t.tally[3]};
  nlohmann::json jp = {{"post", post.part}, {"title", post.title}, {"commit", post.commit}, {"file", post.file},
                       {"claims", nlohmann::json::array()}};
  absl::StrAppend(&t.body, "\n## Part ", post.part, ": ", post.title, " (", post.commit, ", `", post.file, "`)\n\n",
                  "| claim | the post | post's value | measured: rule | ours | verdict |\n",
                  "| --- | --- | --- | --- | --- | --- |\n");
  std::vector<std::string> notes;
  for (const auto& c : post.claims) {
    nlohmann::json jc = AddClaim(c, t, notes);
    jp["claims"].push_back(jc);
  }
  const int n[4] = {t.tally[0] - before[0], t.tally[1] - before[1], t.tally[2] - before[2], t.tally[3] - before[3]};
  absl::StrAppend(&t.overview, "| ", post.part, ": ", post.title, " | ", post.claims.size(), " | ", n[0], " | ", n[1],
                  " | ", n[2], " | ", n[3], " |\n");
  absl::StrAppend(&t.body, "\n", post.claims.size(), " claims: ", n[0], " reproduced, ", n[1], " partly, ", n[2],
                  " not reproduced, ", n[3], " not testable (claim × variant).\n");
  jp["tally"] = {{"reproduced", n[0]}, {"partly", n[1]}, {"not_reproduced", n[2]}, {"not_testable", n[3]}};
  if (!notes.empty()) {
    absl::StrAppend(&t.body, "\n");
    for (const auto& note : notes) absl::StrAppend(&t.body, "- ", MarkdownCell(note), "\n");
  }
  t.json["posts"].push_back(jp);
}

// The closing tally of claims.md and claims.json, and claims.json's errors.
void AddTotals(Tables& t) {
  const int* tally = t.tally;
  absl::StrAppend(&t.body, "\nVerdicts (claim × variant; a claim not testable counts once): ", tally[0], " reproduced, ", tally[1], " partly, ", tally[2],
                  " not reproduced, ", tally[3], " not testable.\n");
  t.json["tally"] = {{"reproduced", tally[0]}, {"partly", tally[1]}, {"not_reproduced", tally[2]}, {"not_testable", tally[3]}};
  t.json["errors"] = nlohmann::json::array();
  for (const auto& e : t.errors) t.json["errors"].push_back(Shown(e, t.study, t.shown));
}

// RESULTS.md (where there is one) carries the same tables between its
// markers, each heading a level down.
absl::Status UpdateResultsPage(const fs::path& results_md, const std::string& tables) {
  if (!fs::is_regular_file(results_md)) return absl::OkStatus();
  auto read = ReadInputFile(results_md, InputKind::kExperiment, "results page");
  if (!read.ok()) return read.status();
  std::string text = *read;
  const std::string begin = "<!-- claims:begin (lumpy claims writes this part) -->", end = "<!-- claims:end -->";
  const size_t b = text.find(begin), e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e <= b) return absl::OkStatus();
  std::string block = tables;
  for (size_t p = block.find("\n## "); p != std::string::npos; p = block.find("\n## ", p + 5)) block.insert(p + 1, "#");
  text.replace(b + begin.size(), e - b - begin.size(), block + "\n");
  return WriteAtomically(results_md, text);
}

// The errors, then where claims.md is and its tally, on stderr.
void PrintTally(const Tables& t, const fs::path& md) {
  const int* tally = t.tally;
  for (const auto& e : t.errors) std::cerr << "claims: " << e << std::endl;
  std::cerr << "claims: " << md.string() << " (" << tally[0] << " reproduced, " << tally[1]
            << " partly, " << tally[2] << " not reproduced, " << tally[3] << " not testable"
            << (t.errors.empty() ? "" : absl::StrCat("; ", t.errors.size(), " error(s)")) << ")" << std::endl;
}

}  // namespace

int RunClaims(const ClaimsOptions& o) {
  auto study = LoadStudy(o.study);
  if (!study.ok()) return ExitStatus(study.status());
  if (!o.results.empty()) study->results = o.results;
  // Result folders as the study file names them (results/NAME), wherever the claims are made.
  Tables t(*study, o.results.empty() ? study->results.lexically_relative(study->file.parent_path()).string()
                                     : o.results);
  for (const auto& r : study->runs) {
    if (!r.error.empty()) t.errors.push_back(r.error);
  }
  const std::vector<Post> posts = LoadPosts(o.claim_files, *study, &t.errors);
  for (const auto& post : posts) AddPost(post, t);
  AddTotals(t);
  const fs::path out(o.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  const std::string tables = absl::StrCat("\n", t.overview, t.body);
  if (auto st = UpdateResultsPage(out / "RESULTS.md", tables); !st.ok()) return ExitStatus(st);
  const std::string md = absl::StrCat(kClaimsHeading, tables);
  for (const auto& [file, text] : {std::pair<std::string, std::string>{"claims.md", md}, {"claims.json", t.json.dump(2) + "\n"}}) {
    if (auto st = WriteAtomically(out / file, text); !st.ok()) return ExitStatus(st);
  }
  PrintTally(t, out / "claims.md");
  return t.errors.empty() ? kExitOk : kExitConfig;
}

}  // namespace lumpy
