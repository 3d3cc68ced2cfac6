#include "lumpy/module_state.h"

#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lumpy {

namespace {

std::string Shape(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]"); }

// `prefix` names the submodule for messages ("" at the top).
absl::Status Load(torch::serialize::InputArchive& archive, torch::nn::Module& module, const std::string& what,
                  const std::string& prefix, bool shared) {
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(what, what.empty() ? "" : ": ", parts...));
  };
  std::set<std::string> expected;
  auto copy = [&](const std::string& key, torch::Tensor& live) -> absl::Status {
    expected.insert(key);
    torch::Tensor saved;
    if (!archive.try_read(key, saved)) {
      return error("the checkpoint has no state \"", prefix, key,
                   "\" (a checkpoint of another plugin, or of an older version of this one?)");
    }
    if (saved.sizes() != live.sizes()) {
      return error("state \"", prefix, key, "\" is ", Shape(saved), " in the checkpoint, ", Shape(live),
                   " in the plugin");
    }
    torch::NoGradGuard no_grad;
    live.copy_(saved);
    return absl::OkStatus();
  };
  for (auto& p : module.named_parameters(/*recurse=*/false)) {
    if (auto st = copy(p.key(), p.value()); !st.ok()) return st;
  }
  for (auto& b : module.named_buffers(/*recurse=*/false)) {
    if (auto st = copy(b.key(), b.value()); !st.ok()) return st;
  }
  for (auto& c : module.named_children()) {
    expected.insert(c.key());
    torch::serialize::InputArchive child;
    if (!archive.try_read(c.key(), child)) {
      return error("the checkpoint has no state \"", prefix, c.key(), "\"");
    }
    if (auto st = Load(child, *c.value(), what, absl::StrCat(prefix, c.key(), "."), false); !st.ok()) return st;
  }
  for (const auto& key : shared ? std::vector<std::string>{} : archive.keys()) {
    if (expected.count(key)) continue;
    torch::Tensor t;
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, t) || archive.try_read(key, sub)) {  // not the archive's own attributes
      return error("the checkpoint holds state \"", prefix, key, "\" that the plugin does not keep");
    }
  }
  return absl::OkStatus();
}

}  // namespace

void SaveModuleState(const torch::nn::Module& module, torch::serialize::OutputArchive& archive) {
  module.save(archive);
}

absl::Status LoadModuleState(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                             const std::string& what, bool shared) {
  try {
    return Load(archive, module, what, "", shared);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, what.empty() ? "" : ": ", e.what_without_backtrace()));
  }
}

}  // namespace lumpy
