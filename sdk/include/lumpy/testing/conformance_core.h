#pragma once
// What the conformance checks (lumpy/testing/conformance.h) share: points,
// finite-difference and state helpers. Include conformance.h, not this.

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lumpy/constraint_handler.h"
#include "lumpy/curriculum_weighter.h"
#include "lumpy/geometry.h"
#include "lumpy/jet.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"
#include "lumpy/module_state.h"
#include "lumpy/report.h"

namespace lumpy::testing {

// Points [n,4] in float64: t uniform in [t0, t1], x, y, z in [-r, r];
// the same for the same seed.
inline torch::Tensor UniformPoints(int64_t n, double t0 = -4.0, double t1 = 1.0, double r = 1.0,
                                   uint64_t seed = 1) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto u = torch::rand({n, 4}, gen, torch::kFloat64);
  auto lo = torch::tensor({t0, -r, -r, -r}, torch::kFloat64);
  auto hi = torch::tensor({t1, r, r, r}, torch::kFloat64);
  return lo + u * (hi - lo);
}

// Violations [points] >= 0 in float64, a quarter of them 0, of a scale that
// changes with k (so updates see different steps).
inline torch::Tensor Violations(int64_t points, int k) {
  auto gen = at::detail::createCPUGenerator(100 + k);
  auto v = torch::randn({points}, gen, torch::kFloat64).clamp_min(0) * std::pow(10.0, (k % 5) - 3);
  return v;
}

namespace internal {

inline std::vector<std::string> Names(const std::vector<std::pair<std::string, double>>& telemetry) {
  std::vector<std::string> out;
  for (const auto& [k, v] : telemetry) out.push_back(k);
  return out;
}

inline std::string Shape(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// max |a - b| / (1 + max |b|): a relative error that stays meaningful where
// components vanish.
inline double Error(const torch::Tensor& a, const torch::Tensor& b) {
  auto d = (a.detach().to(torch::kFloat64) - b.detach().to(torch::kFloat64)).abs().max().item<double>();
  return d / (1.0 + b.detach().to(torch::kFloat64).abs().max().item<double>());
}

// The largest asymmetry of t in dimensions (a, b).
inline double Asymmetry(const torch::Tensor& t, int64_t a, int64_t b) {
  return Error(t, t.transpose(a, b));
}

// An archive as a checkpoint file holds it, read back.
inline torch::serialize::InputArchive Reopened(torch::serialize::OutputArchive& out) {
  std::ostringstream bytes;
  out.save_to(bytes);
  std::istringstream in_bytes(bytes.str());
  torch::serialize::InputArchive in;
  in.load_from(in_bytes);
  return in;
}

// `from`'s state (module_state.h) through the bytes of a checkpoint into
// `to`, as the engine saves and resumes it.
inline absl::Status ThroughCheckpoint(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::serialize::OutputArchive out;
  SaveModuleState(from, out);
  auto in = Reopened(out);
  return LoadModuleState(in, to, "the plugin");
}

// Finite (and defined): a result, so that the caller decides whether the
// test goes on (ASSERT_TRUE) or not (EXPECT_TRUE). An ASSERT inside a void
// helper only returns from the helper: the test went on past the failure.
inline ::testing::AssertionResult AllFinite(const torch::Tensor& t, const std::string& what) {
  if (!t.defined()) return ::testing::AssertionFailure() << what << " is undefined";
  if (!torch::isfinite(t.detach()).all().item<bool>()) {
    return ::testing::AssertionFailure() << what << " has non-finite entries";
  }
  return ::testing::AssertionSuccess();
}

// d f / d x_i by central differences at up to `count` entries of x where
// mask is true, against `grad` (autograd's): a failure names the entry and
// both values. Where they disagree, an entry at a kink or a jump (a
// max(0, .), a tolerance: the one-sided differences' gap does not shrink
// with the step) is skipped, and one with a kink just inside the step is
// checked again at a quarter of it. `f` must not change any state.
inline ::testing::AssertionResult MatchesFiniteDifferences(const std::function<double(const torch::Tensor&)>& f,
                                                          const torch::Tensor& x, const torch::Tensor& grad,
                                                          const torch::Tensor& mask, int count, double rtol,
                                                          const std::string& what) {
  const auto flat_x = x.detach().to(torch::kFloat64).reshape({-1}).clone();
  const auto flat_g = grad.detach().to(torch::kFloat64).reshape({-1});
  const auto flat_m = mask.reshape({-1});
  // The arithmetic of x's dtype sets what finite differences can resolve:
  // in float32 a larger relative step, so that round-off does not swamp it.
  const bool f64 = x.scalar_type() == torch::kFloat64;
  const double eps = f64 ? 2.2e-16 : x.scalar_type() == torch::kFloat32 ? 1.2e-7 : 1e-3;
  const double rel = f64 ? 1e-4 : 5e-3;
  rtol = std::max(rtol, 1e4 * eps);
  auto at = [&](int64_t i, double value) {
    auto y = flat_x.clone();
    y[i] = value;
    return f(y.view(x.sizes()).to(x.scalar_type()));
  };
  const double f0 = f(flat_x.view(x.sizes()).to(x.scalar_type()));
  int checked = 0, kinks = 0;
  for (int64_t i = 0; i < flat_x.numel() && checked < count; ++i) {
    if (!flat_m[i].item<bool>() || kinks > 20 * count) continue;
    const double xi = flat_x[i].item<double>();
    const double h = xi != 0 ? rel * std::abs(xi) : rel * 1e-2;  // never across 0 from a nonzero entry
    const double noise = (f64 ? 1e3 : 1e2) * eps * (1.0 + std::abs(f0)) / h;  // round-off of f over the step
    const double g = flat_g[i].item<double>();
    auto agrees = [&](double difference, double slack) {
      return std::abs(g - difference) <= rtol * (std::abs(g) + std::abs(difference)) + slack;
    };
    const double up = at(i, xi + h), down = at(i, xi - h);
    const double central = (up - down) / (2 * h);
    if (agrees(central, noise)) {
      ++checked;
      continue;
    }
    const double gap = std::abs((up - f0) / h - (f0 - down) / h);
    const double half = std::abs((at(i, xi + h / 2) - f0) / (h / 2) - (f0 - at(i, xi - h / 2)) / (h / 2));
    if (half > 0.75 * gap && gap > noise) {  // smooth: the gap halves with the step; a kink: it does not
      ++kinks;
      continue;
    }
    if (agrees((at(i, xi + h / 4) - at(i, xi - h / 4)) / (h / 2), 4 * noise)) {  // a kink between h/4 and h
      ++checked;
      continue;
    }
    return ::testing::AssertionFailure()
           << what << ": autograd gives " << g << " at entry " << i << ", finite differences " << central
           << " (the gradient is wrong: a detach, a custom backward or a .data write breaks it)";
  }
  if (checked == 0 && kinks > 0) {
    return ::testing::AssertionFailure() << what << ": every entry tried (" << kinks
                                         << ") is a kink or a jump: the function is not differentiable there";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace internal

}  // namespace lumpy::testing
