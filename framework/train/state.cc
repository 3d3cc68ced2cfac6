#include "train/state.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lumpy/module_state.h"
#include "train/checkpoint.h"

namespace lumpy {

namespace fs = std::filesystem;

std::vector<PhysicalScalarSlot> PhysicalScalars(Components& c) {
  std::vector<PhysicalScalarSlot> out;
  for (auto& p : c.model->physical_parameters()) out.push_back({"model." + p.name, p});
  for (auto& l : c.losses) {
    for (auto& p : l.term->physical_parameters()) out.push_back({l.spec->name + "." + p.name, p});
  }
  return out;
}

void ProjectPhysicalScalars(std::vector<PhysicalScalarSlot>& scalars) {
  torch::NoGradGuard no_grad;
  for (auto& p : scalars) p.parameter.value.clamp_(p.parameter.min, p.parameter.max);
}

void WritePhysicalScalars(const std::vector<PhysicalScalarSlot>& scalars,
                          torch::serialize::OutputArchive& a) {
  std::vector<double> values;
  std::vector<std::string> names;
  for (const auto& p : scalars) {
    values.push_back(p.parameter.value.item<double>());
    names.push_back(p.column);
  }
  a.write("physical", torch::tensor(values, torch::kFloat64));
  a.write("physical_names", c10::IValue(absl::StrJoin(names, "\n")));
}

absl::Status ReadPhysicalScalars(torch::serialize::InputArchive& a, std::vector<PhysicalScalarSlot>& scalars) {
  torch::Tensor values;
  a.read("physical", values);
  if (values.numel() != static_cast<int64_t>(scalars.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("holds ", values.numel(), " physical scalars, the experiment has ", scalars.size()));
  }
  values = values.to(torch::kCPU, torch::kFloat64);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < scalars.size(); ++i) scalars[i].parameter.value.fill_(values[i].item<double>());
  return absl::OkStatus();
}

torch::serialize::OutputArchive WeightersArchive(Components& c) {
  torch::serialize::OutputArchive weighters;
  for (const auto& d : c.domains) {
    torch::serialize::OutputArchive w;
    SaveModuleState(*d.weighter, w);
    weighters.write(d.spec->name, w);
  }
  return weighters;
}

std::optional<std::string> FirstDifference(const std::string& theirs, const std::string& mine) {
  if (theirs == mine) return std::nullopt;
  std::istringstream theirs_in(theirs), mine_in(mine);
  std::string theirs_line, mine_line;
  int line = 0;
  while (true) {
    ++line;
    const bool t = static_cast<bool>(std::getline(theirs_in, theirs_line));
    const bool m = static_cast<bool>(std::getline(mine_in, mine_line));
    if (!t && !m) break;
    if (!t) theirs_line = "(end)";
    if (!m) mine_line = "(end)";
    if (theirs_line != mine_line) break;
  }
  return absl::StrCat("\"", theirs_line, "\" where this one has \"", mine_line, "\" (line ", line,
                      " of the resolved TOML)");
}

namespace {

// The model's and then every curriculum's parameters and buffers, in a fixed
// order.
std::vector<torch::Tensor> StateTensors(Components& c) {
  std::vector<torch::Tensor> out;
  auto add = [&](torch::nn::Module& m) {
    for (auto& p : m.parameters(/*recurse=*/true)) out.push_back(p);
    for (auto& b : m.buffers(/*recurse=*/true)) out.push_back(b);
  };
  add(*c.model);
  for (auto& d : c.domains) add(*d.weighter);
  return out;
}

}  // namespace

void BestStep::Take(Components& c, int64_t step, double loss) {
  torch::NoGradGuard no_grad;
  auto live = StateTensors(c);
  if (tensors_.size() != live.size()) {
    tensors_.clear();
    for (auto& t : live) tensors_.push_back(t.detach().clone());
  } else {
    for (size_t i = 0; i < live.size(); ++i) tensors_[i].copy_(live[i]);
  }
  physical_.clear();
  for (const auto& p : scalars_) physical_.push_back(p.parameter.value.item<double>());
  step_ = step;
  loss_ = loss;
}

void BestStep::Save(torch::serialize::OutputArchive& checkpoint) const {
  torch::serialize::OutputArchive a;
  a.write("step", torch::tensor(step_, torch::kInt64));
  a.write("loss", torch::tensor(loss_, torch::kFloat64));
  a.write("physical", torch::tensor(physical_, torch::kFloat64));
  for (size_t i = 0; i < tensors_.size(); ++i) a.write(absl::StrCat("t", i), tensors_[i]);
  checkpoint.write("best_step", a);
}

absl::Status BestStep::Load(torch::serialize::InputArchive& checkpoint, Components& c) {
  torch::serialize::InputArchive a;
  if (!checkpoint.try_read("best_step", a)) {
    return absl::InvalidArgumentError("holds no best-step model (written without stopping.best_step_checkpoint)");
  }
  torch::Tensor step, loss, physical;
  a.read("step", step);
  a.read("loss", loss);
  a.read("physical", physical);
  step_ = step.item<int64_t>();
  loss_ = loss.item<double>();
  physical = physical.to(torch::kCPU, torch::kFloat64).contiguous();
  physical_.assign(physical.data_ptr<double>(), physical.data_ptr<double>() + physical.numel());
  tensors_.clear();
  if (step_ < 0) return absl::OkStatus();  // checkpointed before any step
  auto live = StateTensors(c);
  for (size_t i = 0; i <= live.size(); ++i) {
    torch::Tensor t;
    const bool there = a.try_read(absl::StrCat("t", i), t);
    if (i == live.size()) {
      if (there) return absl::InvalidArgumentError("its best-step model holds more tensors than this experiment's");
      break;
    }
    if (!there || t.sizes() != live[i].sizes()) {
      return absl::InvalidArgumentError("its best-step model does not fit this experiment's model");
    }
    tensors_.push_back(t.to(live[i].options()));
  }
  if (physical_.size() != scalars_.size()) {
    return absl::InvalidArgumentError("its best-step model holds another number of physical scalars");
  }
  return absl::OkStatus();
}

absl::Status BestStep::Write(Components& c) {
  if (step_ < 0 || (step_ == written_step_ && loss_ == written_loss_)) return absl::OkStatus();
  // The snapshot goes into the live modules for the save and back out: the
  // file is then exactly what model.pt would have been at that step. An
  // archive holds its tensors by reference until it is written, so the file
  // is written before the live values come back.
  auto live = StateTensors(c);
  std::vector<torch::Tensor> kept;
  std::vector<double> kept_physical;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live.size(); ++i) {
    kept.push_back(live[i].detach().clone());
    live[i].copy_(tensors_[i]);
  }
  for (size_t i = 0; i < scalars_.size(); ++i) {
    kept_physical.push_back(scalars_[i].parameter.value.item<double>());
    scalars_[i].parameter.value.fill_(physical_[i]);
  }
  absl::Status st;
  {
    torch::serialize::OutputArchive archive;
    SaveModuleState(*c.model, archive);
    WritePhysicalScalars(scalars_, archive);
    auto weighters = WeightersArchive(c);
    archive.write("weighters", weighters);
    archive.write("best_step", torch::tensor(step_, torch::kInt64));
    archive.write("best_loss", torch::tensor(loss_, torch::kFloat64));
    WriteModelKind(archive, model_kind_);
    st = SaveArchiveAtomically(archive, file_, /*step=*/-1);
  }
  for (size_t i = 0; i < live.size(); ++i) live[i].copy_(kept[i]);
  for (size_t i = 0; i < scalars_.size(); ++i) scalars_[i].parameter.value.fill_(kept_physical[i]);
  if (!st.ok()) return st;
  written_step_ = step_;
  written_loss_ = loss_;
  return absl::OkStatus();
}

}  // namespace lumpy
