#include "train/training_checkpoint.h"

#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/input_file.h"
#include "lumpy/module_state.h"
#include "lumpy/status_macros.h"
#include "train/checkpoint.h"

namespace lumpy {

namespace fs = std::filesystem;

namespace {

// Every curriculum's and every handler's state from a checkpoint's
// "weighters" and "handlers" archives.
absl::Status LoadPluginStates(Components& c_, torch::serialize::InputArchive& weighters,
                              torch::serialize::InputArchive& handlers) {
  // The plugin's own archive under `name` in `parent`.
  auto load = [](torch::serialize::InputArchive& parent, const std::string& name, torch::nn::Module& plugin,
                 const std::string& what) -> absl::Status {
    torch::serialize::InputArchive own;
    if (!parent.try_read(name, own)) return absl::InvalidArgumentError(absl::StrCat(what, ": not saved"));
    return LoadModuleState(own, plugin, what);
  };
  for (const auto& d : c_.domains) {
    LUMPY_RETURN_IF_ERROR(load(weighters, d.spec->name, *d.weighter, "the curriculum of domains." + d.spec->name));
  }
  for (const auto& l : c_.losses) {
    if (l.handler) LUMPY_RETURN_IF_ERROR(load(handlers, l.spec->name, *l.handler, "the handler of loss." + l.spec->name));
  }
  return absl::OkStatus();
}

}  // namespace

// The archive: format, fingerprint, loop, RNG, model, optimizer, weighters,
// handlers, physical scalars.
torch::serialize::OutputArchive WriteTrainingCheckpoint(const TrainingState& s) {
  const LoopState& loop_ = s.loop;
  Components& c_ = s.components;
  torch::serialize::OutputArchive a;
  a.write("format", c10::IValue(std::string("lumpy-checkpoint-1")));
  a.write("fingerprint", c10::IValue(ExperimentFingerprint(s.experiment)));
  auto f64 = [](double v) { return torch::tensor(v, torch::kFloat64); };
  auto i64 = [](int64_t v) { return torch::tensor(v, torch::kInt64); };
  // Archive keys are paths split at '.', so scalars are named with '_'.
  a.write("loop_next_step", i64(loop_.next_step));
  a.write("loop_best_loss", f64(loop_.best_loss));
  a.write("loop_best_step", i64(loop_.best_step));
  a.write("loop_lr_scale", f64(loop_.lr_scale));
  a.write("loop_window_sum", f64(loop_.window_sum));
  a.write("loop_window_count", i64(loop_.window_count));
  a.write("loop_best_window", f64(loop_.best_window));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    a.write("rng", gen.get_state());
  }
  torch::serialize::OutputArchive model;
  SaveModuleState(*c_.model, model);
  a.write("model", model);
  WriteModelKind(a, s.experiment.model.entry->name);
  torch::serialize::OutputArchive optimizer;
  s.optimizer.save(optimizer);
  a.write("optimizer", optimizer);
  auto weighters = WeightersArchive(c_);
  a.write("weighters", weighters);
  torch::serialize::OutputArchive handlers;
  for (const auto& l : c_.losses) {
    if (!l.handler) continue;
    torch::serialize::OutputArchive h;
    SaveModuleState(*l.handler, h);
    handlers.write(l.spec->name, h);
  }
  a.write("handlers", handlers);
  WritePhysicalScalars(s.physical, a);
  if (s.best_step) s.best_step->Save(a);
  if (s.ray_points) {
    const auto none = torch::zeros({0, 4}, torch::kFloat64);
    a.write("ray_segments", s.rays.segments.defined() ? s.rays.segments : torch::zeros({0, 8}, torch::kFloat64));
    a.write("ray_bad", s.rays.bad.defined() ? s.rays.bad : none);
  }
  return a;
}

// A checkpoint of the state after `step`: latest.pt, and best.pt (certified
// on the held-out grid if asked) when its interval's mean loss is the lowest

absl::Status ReadTrainingCheckpoint(const fs::path& file, TrainingState& s) {
  const Experiment& exp_ = s.experiment;
  Components& c_ = s.components;
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", what));
  };
  if (!fs::exists(file)) {
    return bad(absl::StrCat("no checkpoint to resume from (the run wrote none: it may have "
                            "failed before its first one; checkpoint.every = ",
                            exp_.checkpoint.GetInt("every"), ")"));
  }
  if (auto st = CheckInputFile(file, InputKind::kCheckpoint, "checkpoint"); !st.ok()) {
    return absl::InvalidArgumentError(st.message());
  }
  torch::serialize::InputArchive a;
  try {
    a.load_from(file.string());
  } catch (const c10::Error& e) {
    return bad(absl::StrCat("truncated or corrupt checkpoint (", e.what_without_backtrace(),
                            "); checkpoints/best.pt may still load: copy it over latest.pt to "
                            "resume from there"));
  }
  try {
    c10::IValue format, fingerprint;
    if (!a.try_read("format", format) || !format.isString() ||
        format.toStringRef() != "lumpy-checkpoint-1") {
      return bad("not a lumpy checkpoint (no format record lumpy-checkpoint-1)");
    }
    a.read("fingerprint", fingerprint);
    if (auto diff = FirstDifference(fingerprint.toStringRef(), ExperimentFingerprint(exp_))) {
      return bad(absl::StrCat("from an incompatible experiment: the checkpoint's experiment has ", *diff));
    }
    // A fresh tensor per read: reading into a defined tensor reuses its dtype.
    auto read_i = [&](const char* k) { torch::Tensor t; a.read(k, t); return t.item<int64_t>(); };
    auto read_d = [&](const char* k) { torch::Tensor t; a.read(k, t); return t.item<double>(); };
    LoopState loop;
    loop.next_step = read_i("loop_next_step");
    loop.best_loss = read_d("loop_best_loss");
    loop.best_step = read_i("loop_best_step");
    loop.lr_scale = read_d("loop_lr_scale");
    loop.window_sum = read_d("loop_window_sum");
    loop.window_count = read_i("loop_window_count");
    loop.best_window = read_d("loop_best_window");
    torch::Tensor rng;
    a.read("rng", rng);
    torch::serialize::InputArchive model, optimizer, weighters, handlers;
    a.read("model", model);
    if (auto st = LoadModuleState(model, *c_.model, "the model"); !st.ok()) return bad(std::string(st.message()));
    a.read("optimizer", optimizer);
    s.optimizer.load(optimizer);
    a.read("weighters", weighters);
    a.read("handlers", handlers);
    if (auto st = LoadPluginStates(c_, weighters, handlers); !st.ok()) return bad(std::string(st.message()));
    if (auto st = ReadPhysicalScalars(a, s.physical); !st.ok()) return bad(std::string(st.message()));
    if (s.best_step) {
      if (auto st = s.best_step->Load(a, c_); !st.ok()) return bad(std::string(st.message()));
    }
    if (s.ray_points) {
      auto read_rows = [&](const char* k) {
        torch::Tensor t;
        a.read(k, t);
        return t.size(0) > 0 ? t : torch::Tensor();
      };
      s.rays = {read_rows("ray_segments"), read_rows("ray_bad")};
    }
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
    s.loop = loop;
  } catch (const c10::Error& e) {
    return bad(absl::StrCat("does not fit this experiment (", e.what_without_backtrace(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace lumpy
