#pragma once
// The conformance checks of curricula (curriculum_weighter.h): ExpectCurriculumConforms.
// Include lumpy/testing/conformance.h (it says what each one checks).

#include "lumpy/testing/conformance_core.h"

namespace lumpy::testing {

using CurriculumFactory = std::function<std::shared_ptr<CurriculumWeighter>()>;

namespace internal {

// Every buffer and parameter of a module, by name, detached copies.
inline std::map<std::string, torch::Tensor> StateOf(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
}

inline bool SameState(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || !torch::equal(v, it->second)) return false;
  }
  return true;
}

}  // namespace internal

// `bounds`: the domain's box the curriculum is given (set_bounds), as the
// engine gives it; the points are drawn inside it.
inline void ExpectCurriculumConforms(const CurriculumFactory& make, int64_t points = 64,
                                     DomainBounds bounds = {{-4.0, -1.0, -1.0, -1.0}, {1.0, 1.0, 1.0, 1.0}}) {
  torch::manual_seed(0);
  std::shared_ptr<CurriculumWeighter> curriculum = make();
  ASSERT_NE(curriculum, nullptr) << "the factory made no curriculum";
  curriculum->to(torch::kFloat64);
  curriculum->set_bounds(bounds);
  const auto x = UniformPoints(points, bounds.lo[0], bounds.hi[0], bounds.hi[1]);
  const auto names = internal::Names(curriculum->telemetry());
  for (int k = 0; k < 4; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    auto loss = (Violations(points, k) + 1e-3).requires_grad_(true);
    for (auto& p : curriculum->parameters()) {
      if (p.grad().defined()) p.grad().zero_();
    }
    const auto before = internal::StateOf(*curriculum);
    auto r = curriculum->reduce(x, loss);
    EXPECT_TRUE(internal::SameState(before, internal::StateOf(*curriculum)))
        << "reduce() changed the curriculum's state: change it in update(), after the optimizer step";
    ASSERT_EQ(r.dim(), 0) << "reduce() must return a scalar, got " << internal::Shape(r);
    EXPECT_TRUE(internal::AllFinite(r, "the reduced loss"));
    ASSERT_TRUE(r.requires_grad()) << "the reduction is detached from the per-point loss";
    r.backward();
    ASSERT_TRUE(loss.grad().defined()) << "the reduction does not depend on the per-point loss";
    EXPECT_TRUE(internal::AllFinite(loss.grad(), "d reduced / d per-point loss"));
    // No finite-difference check here: a curriculum's weights may stop the
    // gradient by design (causal weights are functions of the loss, held
    // fixed in the gradient).
    EXPECT_TRUE(loss.grad().ne(0).any().item<bool>()) << "the reduction does not move with the per-point loss";
    for (const auto& p : curriculum->parameters()) {
      if (p.grad().defined()) EXPECT_TRUE(internal::AllFinite(p.grad(), "a curriculum parameter's gradient"));
    }
    {  // a gradient step, so that the state checked below is not the initial one
      torch::NoGradGuard no_grad;
      for (auto& p : curriculum->parameters()) {
        if (p.grad().defined()) p.sub_(1e-2 * p.grad());
      }
    }
    curriculum->update(x, loss.detach(), k);
    EXPECT_EQ(internal::Names(curriculum->telemetry()), names) << "telemetry names must not change";
  }
  // Through a checkpoint into a fresh instance of another seed, given the
  // same bounds as the engine does: the same reduction, and the same ones
  // over the updates that follow.
  torch::manual_seed(12345);
  std::shared_ptr<CurriculumWeighter> resumed = make();
  resumed->to(torch::kFloat64);
  resumed->set_bounds(bounds);
  const absl::Status st = internal::ThroughCheckpoint(*curriculum, *resumed);
  ASSERT_TRUE(st.ok()) << "its own state does not load back: " << st.message();
  for (int k = 4; k < 8; ++k) {
    const auto loss = Violations(points, k + 5) + 1e-3;
    torch::NoGradGuard no_grad;
    if (!torch::equal(curriculum->reduce(x, loss), resumed->reduce(x, loss))) {
      ADD_FAILURE() << (k == 4 ? "a curriculum loaded from its archive reduces differently"
                               : "a resumed curriculum diverges " + std::to_string(k - 4) +
                                     " update(s) after its checkpoint: update() changed something that is not a "
                                     "registered buffer or parameter");
      break;
    }
    curriculum->update(x, loss, k);
    resumed->update(x, loss, k);
  }
}

}  // namespace lumpy::testing
