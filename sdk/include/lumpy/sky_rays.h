#pragma once
// What the dataset terms (supernova_chi2, bao_chi2) share: the ray-tracing
// parameters, which rays a term traces, the shortfall towards unreached
// targets, and the telemetry of the rays a step traced.
// Header-only: inline functions over the SDK's ray tracer.

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lumpy/lumpy.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/supernovae.h"

namespace lumpy::rays {

inline std::vector<lumpy::ParamSpec> RaySpecs() {
  using lumpy::ParamSpec;
  return {
      ParamSpec::String("mode", "reference: one ray along +x, coordinate-radius distance (the "
                                "reference implementation); physical: rays along sky directions "
                                "from the comoving observer's frame, D_A from the Jacobi map")
          .Default(std::string("reference"))
          .OneOf({"reference", "physical"}),
      ParamSpec::Int("bins", "physical mode: rays along this many directions covering the sphere "
                             "(each target read off its nearest); 0: one ray per supernova")
          .Default(int64_t{48})
          .AtLeast(0)
          .AtMost(100000),  // as lumpy sky --bins
      ParamSpec::Int("sample_bins", "physical mode: trace only this many of the bins each step, drawn at "
                                    "random, with the chi^2 reweighted to an unbiased estimate of all "
                                    "bins' (and its gradient); 0: every bin every step")
          .Default(int64_t{0})
          .AtLeast(0),
      // The reference's tolerances (docs/physics.md). With the 4th-order dense
      // output they give d_L within 1e-4 of the FLRW closed forms in float32
      // (ray_tracer_test.cc, DatasetTermDefaults).
      ParamSpec::Double("rtol", "ray integration: relative tolerance (default: the reference's)")
          .Default(1e-5)
          .Greater(0),
      ParamSpec::Double("atol", "ray integration: absolute tolerance (default: the reference's)")
          .Default(1e-6)
          .Greater(0),
      ParamSpec::Bool("stop_non_lorentzian",
                      "stop a ray where the metric along it stops being Lorentzian (counted in "
                      "rays_non_lorentzian); false: go on until the state is not finite, as the "
                      "reference did")
          .Default(true),
  };
}

inline lumpy::RayTracerOptions TracerOptions(const lumpy::Params& p) {
  lumpy::RayTracerOptions o;
  // Physical rays stop as soon as they pass their own farthest target: most
  // direction bins hold only nearby supernovae, and a stopped ray leaves the
  // batch (the reference's z > 2.5 rule, and its 0.2 beyond, belong to its
  // single ray; going 0.2 further cost 30 % of a sampled physical step).
  if (p.GetString("mode") == "physical") {
    o.z_stop = 0.0;
    o.z_margin = 0.0;
  }
  o.rtol = p.GetDouble("rtol");
  o.atol = p.GetDouble("atol");
  o.stop_non_lorentzian = p.GetBool("stop_non_lorentzian");
  return o;
}

// `tracer` with its rays starting at `observer` (a term's tracer for one
// evaluation: AtObserver(tracer_, ctx.observer_event())).
inline lumpy::RayTracerOptions AtObserver(lumpy::RayTracerOptions tracer, const lumpy::Event& observer) {
  tracer.observer = observer;
  return tracer;
}

// Which rays a term traces: physical along `directions` (target i on ray
// ray_of[i]), else the reference ray (ray_of all 0).
struct Plan {
  bool physical = false;
  torch::Tensor directions, ray_of;
};

// `as_posted`: the reference ray read as the reference implementation read
// it (lumpy::ReferenceReadOut; reference mode only).
inline lumpy::SkyDistances Trace(lumpy::MetricModel& metric, const Plan& plan, const torch::Tensor& z,
                                 const torch::TensorOptions& options,
                                 const lumpy::RayTracerOptions& tracer,
                                 std::optional<lumpy::ReferenceReadOut> as_posted = std::nullopt) {
  TORCH_CHECK(!(plan.physical && as_posted), "the reference read-out reads the reference ray only");
  return plan.physical ? lumpy::TraceSky(metric, plan.directions, plan.ray_of, z, options, tracer)
                       : lumpy::TraceReference(metric, z, options, tracer, as_posted);
}

// A random subset of a term's direction bins for one step (`sample_bins`):
// K of the B bins, uniformly without replacement. A target is on a picked
// bin with probability K/B, and two targets on different bins both with
// probability K(K-1)/(B(B-1)); so a sum over targets weighted by `same`,
// and a sum over pairs on different bins weighted by `cross`, are unbiased
// estimates of the sums over all targets (and so are their gradients).
struct BinSample {
  torch::Tensor bins;     // [K] int64: the picked bins, ascending
  torch::Tensor targets;  // [M] int64: the targets on them, ascending
  torch::Tensor ray_of;   // [M] int64: each one's ray among the K picked
  double same = 1, cross = 1;
};

// The sample of the bins `picked` ([K] distinct, any order) out of `bins`,
// for targets on the bins ray_of [N].
inline BinSample SampleOf(const torch::Tensor& picked, int64_t bins, const torch::Tensor& ray_of) {
  BinSample s;
  s.bins = std::get<0>(picked.to(torch::kLong).sort());
  const int64_t k = s.bins.size(0);
  auto rank = torch::full({bins}, -1, torch::kLong);
  rank.index_put_({s.bins}, torch::arange(k, torch::kLong));
  auto ray = rank.index_select(0, ray_of.to(torch::kLong));
  s.targets = (ray >= 0).nonzero().squeeze(1);
  s.ray_of = ray.index_select(0, s.targets);
  const double b = static_cast<double>(bins), kk = static_cast<double>(k);
  s.same = b / kk;
  s.cross = k > 1 ? b * (b - 1) / (kk * (kk - 1)) : 0.0;
  return s;
}

// K of the bins drawn from the global generator (checkpointed with a run).
inline BinSample DrawBins(int64_t k, int64_t bins, const torch::Tensor& ray_of) {
  return SampleOf(torch::randperm(bins, torch::kLong).narrow(0, 0, k), bins, ray_of);
}

// The compass towards targets the rays fell short of (the reference's
// penalty, per ray): for each ray that missed a target, its farthest missed
// redshift minus the largest it reached, summed; 0-dim, differentiable
// through z_max. Undefined if every target was reached.
inline torch::Tensor Shortfall(const lumpy::SkyDistances& traced, const torch::Tensor& z,
                               const torch::Tensor& ray_of) {
  if (traced.reached.all().item<bool>()) return {};
  auto z_max = traced.z_max.view({-1});
  // The farthest missed target of each ray: data, not differentiated.
  auto reached = traced.reached.to(torch::kCPU).contiguous();
  auto rays = ray_of.to(torch::kCPU, torch::kLong).contiguous();
  auto targets = z.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  std::vector<double> farthest(z_max.size(0), 0.0);
  for (int64_t i = 0; i < targets.size(0); ++i) {
    if (reached.data_ptr<bool>()[i]) continue;
    double& f = farthest[rays.data_ptr<int64_t>()[i]];
    f = std::max(f, targets.data_ptr<double>()[i]);
  }
  auto far = torch::tensor(farthest, torch::kFloat64).to(z_max.options());
  return torch::where(far > 0, far - z_max, torch::zeros_like(z_max)).sum();
}

// The last step's rays, for metrics.csv: step counts, how many rays stopped
// on a bad state, how many targets went unreached, and where the first ray
// that stopped on a bad state stopped (bad_t, bad_x, bad_y, bad_z, its
// affine parameter bad_lambda, the metric's two smallest eigenvalues there
// bad_eig0 <= bad_eig1: Lorentzian means bad_eig0 < 0 < bad_eig1; NaN when no
// ray stopped badly).
class RayTelemetry {
 public:
  void Record(const lumpy::SkyDistances& d) {
    values_ = {{"ray_steps", static_cast<double>(d.stop.accepted)},
               {"ray_rejected", static_cast<double>(d.stop.rejected)},
               {"rays_non_finite", static_cast<double>(d.stop.Count("non-finite"))},
               {"rays_non_lorentzian", static_cast<double>(d.stop.Count("non-lorentzian"))},
               {"rays_singular", static_cast<double>(d.stop.Count("singular"))},
               {"unreached", d.reached.defined() ? static_cast<double>((~d.reached).sum().item<int64_t>()) : 0.0}};
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::array<double, 7> where{nan, nan, nan, nan, nan, nan, nan};
    if (!d.stop.bad.empty()) {
      const auto& b = d.stop.bad.front();
      where = {b.x[0], b.x[1], b.x[2], b.x[3], b.lambda, b.eigenvalues[0], b.eigenvalues[1]};
    }
    const char* names[7] = {"bad_t", "bad_x", "bad_y", "bad_z", "bad_lambda", "bad_eig0", "bad_eig1"};
    for (int i = 0; i < 7; ++i) values_.push_back({names[i], where[i]});
  }
  std::vector<std::pair<std::string, double>> values() const { return values_; }

 private:
  std::vector<std::pair<std::string, double>> values_ = {
      {"ray_steps", 0},      {"ray_rejected", 0},       {"rays_non_finite", 0},
      {"rays_non_lorentzian", 0}, {"rays_singular", 0}, {"unreached", 0},
      {"bad_t", NAN},        {"bad_x", NAN},            {"bad_y", NAN},
      {"bad_z", NAN},        {"bad_lambda", NAN},       {"bad_eig0", NAN},
      {"bad_eig1", NAN}};
};

}  // namespace lumpy::rays
