#include "train/step_loss.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/out_of_memory.h"
#include "lumpy/geometry.h"
#include "lumpy/status_macros.h"
#include "physics/point_set_context.h"
#include "train/ranks.h"
#include "train/sampling.h"

namespace lumpy {
namespace {

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

}  // namespace

absl::StatusOr<HandledTerm> ApplyHandler(ConstraintHandler& handler, const torch::Tensor& values,
                                         bool on_mean) {
  HandledTerm out;
  const int64_t n = values.size(0);
  auto input = on_mean ? values.mean().reshape({1}) : values;
  Penalty p = handler.penalty(input);
  if (!p.per_point.defined() || p.per_point.sizes() != input.sizes() || !p.total.defined() ||
      p.total.numel() != 1) {
    return absl::InternalError(absl::StrCat(
        "returned a penalty of shape ", p.per_point.defined() ? c10::str(p.per_point.sizes()) : "undefined",
        " (total ", p.total.defined() ? c10::str(p.total.sizes()) : "undefined", ") for an input of shape ",
        c10::str(input.sizes()), "; it must return one value per input value and a scalar total"));
  }
  {
    // The engine reduces per_point (through the curricula); summaries and
    // the trap's telemetry read total: they must agree.
    const double total = p.total.item<double>(), mean = p.per_point.mean().item<double>();
    if (std::isfinite(total) && std::isfinite(mean) &&
        std::abs(total - mean) > 1e-4 * std::max(1.0, std::abs(mean))) {
      return absl::InternalError(absl::StrCat("returned a total of ", total, " but its per-point values average ",
                                              mean, "; Penalty::total must be mean(per_point)"));
    }
  }
  out.input = input.detach();
  out.penalty.total = p.total.reshape({});
  // On the mean: the penalty of the mean as one value per point, so that a
  // uniform curriculum gives back exactly the penalty.
  out.penalty.per_point = on_mean ? out.penalty.total.expand({n}) : p.per_point;
  return out;
}

// What one term contributes to a step: its metrics.csv values, and its share
// of the loss (per point on its domain, or direct for a dataset term or a
// handler acting on the term's mean), plus what its handler's update needs.
// What one term contributes to a step: its metrics.csv values, and its share
// of the loss (per point on its domain, or direct for a dataset term or a
// handler acting on the term's mean), plus what its handler's update needs.
struct StepLossEvaluator::TermShare {
  std::vector<double> row;
  torch::Tensor per_point;     // [B] on the term's domain, or undefined
  torch::Tensor direct;        // scalar, or undefined
  torch::Tensor handler_input; // what the handler saw (detached for update), or undefined
  bool partial = false;        // a dataset term's share of the work (LossValue::partial)
};

StepLossEvaluator::StepLossEvaluator(Components& components, std::vector<std::string> columns,
                                     const std::vector<PhysicalScalarSlot>& physical, torch::TensorOptions options,
                                     Ranks* ranks)
    : c_(components),
      columns_(std::move(columns)),
      physical_(physical),
      options_(options),
      ranks_(ranks),
      rank_(ranks ? ranks->rank() : 0),
      size_(ranks ? ranks->size() : 1) {
  domain_of_.assign(c_.losses.size(), -1);
  last_value_.assign(c_.losses.size(), NAN);
  warned_.assign(c_.losses.size(), 0);
  for (const auto& d : c_.domains) uses_ray_points_ |= d.spec->ray_points > 0;
  whole_.assign(c_.domains.size(), 0);
  size_t column = 2;
  for (size_t i = 0; i < c_.losses.size(); ++i) {
    const auto& l = c_.losses[i];
    for (size_t d = 0; d < c_.domains.size(); ++d) {
      if (c_.domains[d].spec->name == l.spec->domain) domain_of_[i] = static_cast<int>(d);
    }
    if (domain_of_[i] >= 0 && l.handler && l.spec->handler_on_mean) whole_[domain_of_[i]] = 1;
    term_column_.push_back(column);
    column += 1 + l.term->telemetry().size() + (l.handler ? 1 + l.handler->telemetry().size() : 0);
  }
}

// Appends a plugin's telemetry values to `row`, whose first value goes in
// metrics.csv column `column`, checking that the names are the ones the
// columns were made from (the file is written by position: a plugin whose
// list changed would shift every later column).
absl::Status StepLossEvaluator::AppendTelemetry(const std::vector<std::pair<std::string, double>>& telemetry,
                                                const std::string& prefix, const std::string& who, size_t column,
                                      std::vector<double>* row) const {
  for (const auto& [k, v] : telemetry) {
    const size_t at = column + row->size();
    const std::string name = absl::StrCat(prefix, ".", k);
    if (at + 2 >= columns_.size() || columns_[at] != name) {
      return absl::InternalError(absl::StrCat(
          who, " broke its contract: its telemetry changed after the first step (metrics.csv column ", at + 1, " is \"",
          at + 2 < columns_.size() ? columns_[at] : std::string("lr"), "\", it now reports \"", name,
          "\"); a plugin must report the same names, in the same order, every step"));
    }
    row->push_back(v);
  }
  return absl::OkStatus();
}

// One term: evaluate it, check what it returned, and let its handler (a
// constraint's, or an objective's weighting) turn it into its share.
absl::StatusOr<StepLossEvaluator::TermShare> StepLossEvaluator::EvaluateTerm(const LossComponent& l,
                                                                             StepContext& ctx, int64_t step,
                                                                             size_t column) {
  const LossSpec& spec = *l.spec;
  auto failed = [&](const std::string& what) {
    return absl::AbortedError(absl::StrCat("step ", step, ": loss term \"", spec.name, "\" (",
                                           spec.term.entry->name, ") ", what));
  };
  LossValue value;
  try {
    value = l.term->evaluate(ctx);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (IsOutOfMemory(what)) {
      return failed(absl::StrCat("ran out of memory (", AllocatorDetail(what), "); ", OutOfMemoryAdvice()));
    }
    return failed(absl::StrCat("failed: ", what));
  }
  const int64_t n = ctx.points().size(0);
  const bool dataset = spec.kind == LossKind::kDataset;
  if (dataset && value.per_point.defined()) {
    return absl::InternalError(absl::StrCat("loss term \"", spec.name, "\" (", spec.term.entry->name,
                                            ") is registered as a dataset term but returned per-point values"));
  }
  if (!dataset && (!value.per_point.defined() || value.per_point.dim() != 1 || value.per_point.size(0) != n)) {
    return absl::InternalError(absl::StrCat(
        "loss term \"", spec.name, "\" (", spec.term.entry->name, ") returned per-point values of shape ",
        value.per_point.defined() ? c10::str(value.per_point.sizes()) : "undefined", ", expected [", n, "]"));
  }
  TermShare share;
  share.partial = dataset && value.partial && ctx.shard().size > 1;
  double term_value = value.value.item<double>();
  share.row.push_back(term_value);
  const std::string who_term = absl::StrCat("loss term \"", spec.name, "\" (", spec.term.entry->name, ")");
  LUMPY_RETURN_IF_ERROR(AppendTelemetry(l.term->telemetry(), spec.name, who_term, column, &share.row));
  // What the handler or the loss sees: a constraint's violation as it is; an
  // objective or dataset term times its weight.
  torch::Tensor input = dataset ? spec.weight * value.value.reshape({1})
                        : spec.kind == LossKind::kConstraint ? value.per_point
                                                             : spec.weight * value.per_point;
  if (l.handler) {
    auto applied = ApplyHandler(*l.handler, input, dataset || spec.handler_on_mean);
    if (!applied.ok()) {
      return absl::InternalError(absl::StrCat("the handler of loss term \"", spec.name, "\" (",
                                              spec.handler.entry->name, ") ", applied.status().message()));
    }
    const double penalty = applied->penalty.total.item<double>();
    share.row.push_back(penalty);
    const std::string who = absl::StrCat("the handler of loss term \"", spec.name, "\" (", spec.handler.entry->name, ")");
    LUMPY_RETURN_IF_ERROR(AppendTelemetry(l.handler->telemetry(), spec.name, who, column, &share.row));
    if (std::isfinite(term_value) && !std::isfinite(penalty)) term_value = penalty;
    share.handler_input = applied->input;
    if (dataset) {
      share.direct = applied->penalty.total;
    } else {
      share.per_point = applied->penalty.per_point;
    }
  } else if (dataset) {
    share.direct = input.reshape({});
  } else {
    share.per_point = input;
  }
  if (!std::isfinite(term_value)) {
    return absl::AbortedError(absl::StrCat("step ", step, ": loss term \"", spec.name, "\" is ", term_value, "; stopping"));
  }
  return share;
}

// Each domain's points for this step, and its weight in the loss: every
// rank draws the whole set (so that the random sequence stays the same on
// every rank) and keeps its contiguous share, weighted by its share of the
// points; a domain where a handler acts on the mean (not a sum over points)
// is computed whole on every rank, weighted 1/size.
std::vector<StepLossEvaluator::DomainDraw> StepLossEvaluator::Draw(const RayPositions& rays) const {
  std::vector<DomainDraw> out;
  for (size_t d = 0; d < c_.domains.size(); ++d) {
    DomainDraw draw;
    draw.points = SamplePoints(*c_.domains[d].spec, options_, rays, c_.observer);
    const int64_t n = draw.points.size(0);
    draw.total = n;
    if (size_ > 1 && !whole_[d]) {
      const auto [begin, end] = ShareOf(n, rank_, size_);
      draw.points = draw.points.narrow(0, begin, end - begin);
      draw.weight = n > 0 ? static_cast<double>(end - begin) / static_cast<double>(n) : 0.0;
      draw.sharded = true;
    } else {
      draw.weight = 1.0 / static_cast<double>(size_);
    }
    out.push_back(std::move(draw));
  }
  return out;
}

absl::StatusOr<StepLoss> StepLossEvaluator::Compute(int64_t step, RayPositions* rays) {
  MetricModel& model = *c_.model;
  std::unique_ptr<Geometry> observer;
  const auto draws = Draw(*rays);
  std::vector<std::unique_ptr<PointSetContext>> contexts;
  points_per_step_ = 0;
  for (const auto& d : draws) {
    contexts.push_back(std::make_unique<PointSetContext>(model, d.points, &observer, step, Shard{}, c_.observer));
    points_per_step_ += d.total;
  }
  // The rays this step traces feed the next step's ray_points.
  std::optional<RayStateRecorder> recorder;
  if (uses_ray_points_) recorder.emplace();
  // Dataset terms without a handler may do their shard of the work.
  PointSetContext shared(model, torch::zeros({0, 4}, options_), &observer, step, Shard{rank_, size_}, c_.observer);
  PointSetContext whole(model, torch::zeros({0, 4}, options_), &observer, step, Shard{}, c_.observer);

  StepLoss out;
  out.row = {static_cast<double>(step), 0.0};
  std::vector<double> weights = {Rank0(), 1.0};  // per row value: its factor in the sum over ranks
  out.handler_inputs.resize(c_.losses.size());
  out.curriculum_inputs.resize(c_.domains.size());
  std::vector<torch::Tensor> sums(c_.domains.size());
  auto add = [](torch::Tensor& sum, const torch::Tensor& x) { sum = sum.defined() ? sum + x : x; };
  torch::Tensor direct;  // dataset terms and the like, past the curricula
  for (size_t i = 0; i < c_.losses.size(); ++i) {
    const int di = domain_of_[i];
    StepContext& ctx = di >= 0 ? static_cast<StepContext&>(*contexts[di]) : c_.losses[i].handler ? whole : shared;
    LUMPY_ASSIGN_OR_RETURN(auto share, EvaluateTerm(c_.losses[i], ctx, step, out.row.size()));
    // A term's value, penalty and telemetry add up over ranks with its
    // share's weight; its handler's telemetry (the handler's state) is rank 0's.
    const double w = di >= 0 ? draws[di].weight : share.partial ? 1.0 : 1.0 / static_cast<double>(size_);
    const size_t own = 1 + c_.losses[i].term->telemetry().size();
    for (size_t k = 0; k < share.row.size(); ++k) weights.push_back(k <= own ? w : Rank0());  // own: the penalty
    out.row.insert(out.row.end(), share.row.begin(), share.row.end());
    out.handler_inputs[i] = share.handler_input;
    if (share.handler_input.defined() && di >= 0 && draws[di].sharded) {
      out.handler_inputs[i] = Gather(share.handler_input, draws[di].total);
    }
    if (share.per_point.defined()) add(sums[di], share.per_point);
    if (share.direct.defined()) add(direct, share.partial ? share.direct : share.direct * (1.0 / size_));
  }
  if (recorder) *rays = Kept(recorder->positions());
  out.loss = direct;
  for (size_t di = 0; di < c_.domains.size(); ++di) {
    if (!sums[di].defined()) continue;
    add(out.loss, c_.domains[di].weighter->reduce(contexts[di]->points(), sums[di]) * draws[di].weight);
    // What the curriculum's update() gets: the whole step's, on every rank.
    CurriculumInput& in = out.curriculum_inputs[di];
    in.points = contexts[di]->points().detach();
    in.loss = sums[di].detach();
    if (draws[di].sharded) {
      in.points = Gather(in.points.reshape({-1}), draws[di].total, 4).view({-1, 4});
      in.loss = Gather(in.loss, draws[di].total);
    }
  }
  for (size_t di = 0; di < c_.domains.size(); ++di) {
    const auto& d = c_.domains[di];
    std::vector<double> values;
    const std::string who = absl::StrCat("the curriculum of domain \"", d.spec->name, "\" (", d.spec->curriculum.entry->name, ")");
    LUMPY_RETURN_IF_ERROR(AppendTelemetry(d.weighter->telemetry(), d.spec->name, who, out.row.size(), &values));
    out.row.insert(out.row.end(), values.begin(), values.end());
    weights.insert(weights.end(), values.size(), draws[di].weight);
  }
  // Physical scalars as this step's loss used them.
  for (const auto& p : physical_) out.row.push_back(p.parameter.value.item<double>());
  weights.resize(out.row.size(), Rank0());
  if (out.row.size() + 2 != columns_.size()) {
    return absl::InternalError(absl::StrCat("step ", step, ": the row has ", out.row.size() + 2, " values for ",
                                            columns_.size(), " metrics.csv columns: a plugin reports fewer telemetry "
                                            "values than at the first step; a plugin must report the same names every step"));
  }
  out.row[1] = out.loss.item<double>();
  if (size_ > 1) out.row = SumOverRanks(out.row, weights);
  for (size_t i = 0; i < c_.losses.size(); ++i) WarnOnJump(i, out.row[term_column_[i]], step);
  if (!std::isfinite(out.row[1])) {
    return absl::AbortedError(absl::StrCat("step ", step, ": the total loss is ", out.row[1], "; stopping"));
  }
  return out;
}

// Kept (and checkpointed) no more than the ray-point draws need, 64 per ray
// point: every k-th segment (no random draw: the ranks' random sequences
// stay in step whatever rays each traced).
RayPositions StepLossEvaluator::Kept(RayPositions rays) const {
  int64_t need = 0;
  for (const auto& d : c_.domains) need = std::max(need, 64 * d.spec->ray_points);
  if (rays.segments.defined() && rays.segments.size(0) > need) {
    auto pick = torch::arange(need, torch::kInt64) * rays.segments.size(0) / need;
    rays.segments = rays.segments.index_select(0, pick);
  }
  return rays;
}

// Every rank's [n_r x width] share of a domain's `total` rows of `width`
// values (flattened), in rank order.
torch::Tensor StepLossEvaluator::Gather(const torch::Tensor& mine, int64_t total, int64_t width) const {
  std::vector<int64_t> counts;
  for (int64_t r = 0; r < size_; ++r) {
    const auto [begin, end] = ShareOf(total, r, size_);
    counts.push_back((end - begin) * width);
  }
  return ranks_->AllGather(mine.contiguous(), counts);
}

// sum over ranks of weight x value, for every value of the row.
std::vector<double> StepLossEvaluator::SumOverRanks(const std::vector<double>& row,
                                                    const std::vector<double>& weights) const {
  std::vector<torch::Tensor> t = {torch::tensor(row, torch::kFloat64) * torch::tensor(weights, torch::kFloat64)};
  ranks_->AllReduceSum(t);
  auto c = t[0].contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// A dataset term whose value jumps a hundredfold from one step to the next
// (a ray that stopped on a bad state, supernovae suddenly unreached) is
// reported once, with the step and what the term's telemetry says.
void StepLossEvaluator::WarnOnJump(size_t term, double value, int64_t step) {
  const auto& l = c_.losses[term];
  const double last = last_value_[term];
  last_value_[term] = value;
  if (l.spec->kind != LossKind::kDataset || warned_[term] || !(last > 0) || !(value > 100 * last)) return;
  warned_[term] = 1;
  std::string why;
  for (const auto& [k, v] : l.term->telemetry()) {
    if (v != 0 && std::isfinite(v)) absl::StrAppend(&why, why.empty() ? "" : ", ", k, " = ", Num(v));
  }
  std::fprintf(stderr, "\nwarning: step %lld: loss term \"%s\" jumped from %.4g to %.4g (x%.3g)%s%s\n",
               static_cast<long long>(step), l.spec->name.c_str(), last, value, value / last,
               why.empty() ? "" : "; its telemetry: ", why.c_str());
}


}  // namespace lumpy
