// Google Benchmark: the physics path. Items are collocation points.
// Run: build/release/bin/lumpy_benchmarks [--benchmark_filter=BM_PhysicsStep]
//
//   BM_Jet/<order>/<points>               SIREN 4x64 Taylor-mode jet + parameter backward, float32
//                                         (1 and 48 points: a ray tracer stage in each mode)
//   BM_Jet_Autograd/<order>/<points>      the same through the SDK's nested-autograd jet
//   BM_Geometry/<points>                  curvature and 3+1 quantities from a jet (forward)
//   BM_PhysicsStep/<points>               one optimizer step of the physics loss:
//       fresh points t in U[-4,1], x,y,z in U[-1,1]; EFE residual (mixed x det gamma,
//       dust, Omega_m = 0.3) + WEC augmented-Lagrangian penalty
//       lambda mean(v) + 1/2 mean(v)^2 (lambda = 1, mu = 1); backward; Adam.
//   BM_PhysicsStep_AutogradJet/<points>   the same step through the autograd jet
//   BM_SupernovaLoss/<mode>               supernova_chi2 over the 1701 Pantheon+ supernovae,
//       forward + backward + Adam; 0: reference mode (one ray), 1: physical mode with
//       48 direction bins, 2: reference mode through omega0 = 10 (part 5); items are supernovae
//   BM_RayTrace/<mode>/<rays>             the rays alone towards z = 2.3, forward + backward
//   BM_JetGemmFloor/<points>              only the matrix products of the step's jet:
//       its time is the floor BM_PhysicsStep is measured against; items are FLOPs
// Ratios between benchmarks on a noisy machine: add
// --benchmark_enable_random_interleaving=true --benchmark_repetitions=5.

#include <benchmark/benchmark.h>

#include <thread>

#include "config/experiment.h"
#include "core/threads.h"
#include "lumpy/ray_tracer.h"
#include "loader/plugin_loader.h"
#include "physics/point_set_context.h"
#include "train/sampling.h"

namespace lumpy {
namespace {

Registry& Plugins() {
  static Registry* registry = [] {
    auto* r = new Registry();
    PluginLoader loader(*r);
    auto st = loader.LoadPath(PluginLoader::DefaultPluginDirectory());
    if (!st.ok()) throw std::runtime_error(std::string(st.message()));
    return r;
  }();
  return *registry;
}

template <class T>
std::shared_ptr<T> Make(const std::string& name,
                        std::map<std::string, ParamValue> overrides = {}) {
  auto made = Plugins().Make<T>(name, std::move(overrides));
  if (!made.ok()) throw std::runtime_error(std::string(made.status().message()));
  return *made;
}

void Setup() {
  ConfigureThreads(0);
  torch::manual_seed(0);
}

DomainSpec Bulk(int64_t n) {
  DomainSpec d;
  d.name = "bulk";
  d.strata = {{"all", n, -4.0, 1.0}};
  d.x = d.y = d.z = {-1.0, 1.0};
  return d;
}

const auto kF32 = torch::TensorOptions().dtype(torch::kFloat32);

void JetBenchmark(benchmark::State& state, const std::string& jet_kind) {
  Setup();
  const int order = static_cast<int>(state.range(0));
  auto model = Make<MetricModel>("siren", {{"jet", jet_kind}});
  model->to(torch::kFloat32);
  auto x = SamplePoints(Bulk(state.range(1)), kF32);
  for (auto _ : state) {
    Jet jet = model->jet(x, order);
    // Include the parameter backward that training pays for.
    auto s = order == 0 ? jet.g.sum() : (order == 1 ? jet.dg.sum() : jet.d2g.sum());
    s.backward();
    benchmark::DoNotOptimize(s.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * state.range(1));
}
void BM_Jet(benchmark::State& state) { JetBenchmark(state, "taylor"); }

// The matrix-product floor of BM_PhysicsStep: exactly the jet's GEMMs for the
// SIREN 4x64 (15 channels; forward y = h W^T, backward gh = gy W and
// gW += gy^T h), blocked over points and threads as the fused layers run
// them, with nothing else. Items are FLOPs: items_per_second is the GEMM rate
// for these shapes, and the time per iteration is the floor of the step.
void BM_JetGemmFloor(benchmark::State& state) {
  Setup();
  const int64_t n = state.range(0), c = 15, block = 64;
  const std::vector<std::pair<int64_t, int64_t>> layers = {{4, 64}, {64, 64}, {64, 64}, {64, 64}, {64, 10}};
  std::vector<torch::Tensor> h, w, y, gh, gw;
  int64_t flops = 0;
  for (const auto& [in, out] : layers) {
    h.push_back(torch::randn({n, c, in}));
    w.push_back(torch::randn({out, in}));
    y.push_back(torch::empty({n, c, out}));
    gh.push_back(torch::empty({n, c, in}));
    gw.push_back(torch::zeros({at::get_num_threads(), out, in}));
    flops += 2 * n * c * in * out * (in == 4 ? 2 : 3);  // no gh for the input layer
  }
  for (auto _ : state) {
    for (size_t l = 0; l < layers.size(); ++l) {
      const int64_t in = layers[l].first, out = layers[l].second;
      at::parallel_for(0, n, block, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; b += block) {
          const int64_t p = std::min(end, b + block) - b;
          auto hb = h[l].narrow(0, b, p).view({p * c, in});
          auto yb = y[l].narrow(0, b, p).view({p * c, out});
          at::mm_out(yb, hb, w[l].t());
          if (in != 4) {
            auto ghb = gh[l].narrow(0, b, p).view({p * c, in});
            at::mm_out(ghb, yb, w[l]);
          }
          gw[l][at::get_thread_num()].addmm_(yb.t(), hb);
        }
      });
    }
  }
  state.SetItemsProcessed(state.iterations() * flops);
}
BENCHMARK(BM_JetGemmFloor)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Jet_Autograd(benchmark::State& state) { JetBenchmark(state, "autograd"); }
BENCHMARK(BM_Jet)->ArgsProduct({{0, 1, 2}, {1, 48, 100, 1000}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Jet_Autograd)->ArgsProduct({{0, 1, 2}, {100, 1000}})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Geometry(benchmark::State& state) {
  Setup();
  auto model = Make<MetricModel>("siren", {{"output_init_std", 0.05}});
  model->to(torch::kFloat32);
  auto x = SamplePoints(Bulk(state.range(0)), kF32);
  Jet jet;
  {
    torch::NoGradGuard no_grad;
    jet = model->jet(x, 2);
  }
  for (auto _ : state) {
    Geometry geo(jet);
    benchmark::DoNotOptimize(geo.einstein_mixed().data_ptr());
    benchmark::DoNotOptimize(geo.ricci_scalar().data_ptr());
    benchmark::DoNotOptimize(geo.shear_squared().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Geometry)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

void PhysicsStep(benchmark::State& state, const std::string& jet_kind) {
  Setup();
  const int64_t n = state.range(0);
  auto model = Make<MetricModel>("siren", {{"jet", jet_kind}});
  model->to(torch::kFloat32);
  auto efe = Make<LossTerm>("efe_residual");
  auto wec = Make<LossTerm>("wec");
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-4));
  const DomainSpec bulk = Bulk(n);
  const double lambda = 1.0, mu = 1.0;
  for (auto _ : state) {
    PointSetContext ctx(*model, SamplePoints(bulk, kF32));
    auto v = wec->evaluate(ctx).value;
    auto loss = efe->evaluate(ctx).value + lambda * v + 0.5 * mu * v * v;
    adam.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    adam.step();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
void BM_PhysicsStep(benchmark::State& state) { PhysicsStep(state, "taylor"); }
void BM_PhysicsStep_AutogradJet(benchmark::State& state) { PhysicsStep(state, "autograd"); }
BENCHMARK(BM_PhysicsStep)->Arg(100)->Arg(1000)->Arg(4000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PhysicsStep_AutogradJet)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The supernova loss over all 1701 Pantheon+ supernovae, forward and
// backward, SIREN 4x64 float32 (the catalogue from data/ or LUMPY_DATA_PATH).
// Arg 0: reference mode (one ray); arg 1: physical mode with 48 direction
// bins; arg 2: reference mode through part 5's SIREN (omega0 = 10: more
// integrator steps, and the exact read-out's crossings on a wiggly z).
// Counters: the integrator's accepted and rejected steps.
void BM_SupernovaLoss(benchmark::State& state) {
  Setup();
  std::map<std::string, ParamValue> siren = {{"output_init_std", 0.05}};
  if (state.range(0) == 2) siren["omega0"] = 10.0;
  auto model = Make<MetricModel>("siren", siren);
  model->to(torch::kFloat32);
  const bool physical = state.range(0) == 1;
  auto sn = Make<LossTerm>("supernova_chi2", {{"mode", std::string(physical ? "physical" : "reference")}});
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-4));
  DomainSpec none = Bulk(1);
  for (auto _ : state) {
    PointSetContext ctx(*model, SamplePoints(none, kF32));
    auto loss = sn->evaluate(ctx).value;
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  for (const auto& [k, v] : sn->telemetry()) {
    if (k == "ray_steps" || k == "ray_rejected" || k == "unreached") state.counters[k] = v;
  }
  state.SetLabel(physical ? "physical, 48 bins" : state.range(0) == 2 ? "reference, omega0 = 10" : "reference");
  state.SetItemsProcessed(state.iterations() * 1701);
}
BENCHMARK(BM_SupernovaLoss)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Rays alone (forward and backward) towards z = 2.3 through a SIREN metric
// (at its initialisation it stops at lambda = -10 short of that); arg 0:
// mode (0 reference: one ray; 1 physical with the Jacobi map), arg 1: rays
// (physical mode). Items are rays; counters: accepted and rejected steps.
void BM_RayTrace(benchmark::State& state) {
  Setup();
  auto model = Make<MetricModel>("siren", {{"output_init_std", 0.05}});
  model->to(torch::kFloat32);
  RayTracerOptions o;
  o.rtol = 1e-6;
  o.atol = 1e-8;
  const bool physical = state.range(0) == 1;
  const int64_t rays = physical ? state.range(1) : 1;
  auto z = torch::full({rays}, 2.3, kF32);
  auto directions = DirectionBins(rays);
  auto ray_of = torch::arange(rays, torch::kLong);
  RayStop stop;
  for (auto _ : state) {
    auto d = physical ? TraceSky(*model, directions, ray_of, z, kF32, o) : TraceReference(*model, z, kF32, o);
    // z_max keeps the graph also when the metric's rays reach no target.
    (d.luminosity_distance.sum() + d.z_max.sum()).backward();
    stop = d.stop;
  }
  state.counters["accepted"] = static_cast<double>(stop.accepted);
  state.counters["rejected"] = static_cast<double>(stop.rejected);
  state.SetItemsProcessed(state.iterations() * rays);
}
BENCHMARK(BM_RayTrace)
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({1, 48})
    ->Args({1, 192})
    ->ArgNames({"physical", "rays"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace lumpy

BENCHMARK_MAIN();
