// Google Benchmark: one training step of a stage, as `lumpy run` takes it
// (the experiment file's own components: every domain, term, handler and
// curriculum, the step's loss through the engine's StepLossEvaluator, the
// backward pass, clipping and Adam), float32, all cores. Items are steps.
//
//   BM_Part5Step                 experiments/blog/05_cmb_priors.toml (reference-mode ray)
//   BM_PhysicalStep/<sample>     experiments/baselines/physical_sky.toml: part 5 with
//       physical-mode rays along the supernovae's directions, 48 bins at the file's
//       tolerances (rtol 1e-6, atol 1e-8) with <sample> = 0; with <sample> = K, K of
//       the 48 bins a step (sample_bins) at the dataset terms' default tolerances
//       (rtol 1e-5, atol 1e-6), as experiments/blog/06_real_sky.toml trains.
// The steps start from the metric's initialisation; later in a run rays take
// more integrator steps (metrics.csv's sn.ray_steps says how many).

#include <benchmark/benchmark.h>

#include "config/experiment.h"
#include "core/threads.h"
#include "loader/plugin_loader.h"
#include "train/metrics_log.h"
#include "train/runtime.h"
#include "train/state.h"
#include "train/step_loss.h"

namespace lumpy {
namespace {

void StageStep(benchmark::State& state, const std::string& file, const std::vector<std::string>& overrides) {
  Registry registry;
  PluginLoader loader(registry);
  if (auto st = loader.LoadDefaults(); !st.ok()) return state.SkipWithError(std::string(st.message()).c_str());
  auto exp = LoadExperiment(std::string(LUMPY_BENCH_SOURCE_DIR) + "/" + file, overrides, loader, registry);
  if (!exp.ok()) return state.SkipWithError(std::string(exp.status().message()).c_str());
  ApplyRuntime(*exp);
  ConfigureThreads(0);
  auto c = Instantiate(*exp);
  if (!c.ok()) return state.SkipWithError(std::string(c.status().message()).c_str());
  const auto options = RuntimeOptions(*exp);
  c->model->to(options.dtype().toScalarType());
  for (auto& d : c->domains) d.weighter->to(options.dtype().toScalarType());
  auto physical = PhysicalScalars(*c);
  StepLossEvaluator evaluator(*c, MetricsLog::Columns(*c, physical), physical, options);
  std::vector<torch::Tensor> parameters = c->model->parameters();
  for (auto& d : c->domains) {
    for (auto& p : d.weighter->parameters()) parameters.push_back(p);
  }
  torch::optim::Adam adam(parameters, torch::optim::AdamOptions(1e-4));
  RayPositions rays;
  int64_t step = 0;
  for (auto _ : state) {
    auto s = evaluator.Compute(step++, &rays);
    if (!s.ok()) return state.SkipWithError(std::string(s.status().message()).c_str());
    adam.zero_grad();
    s->loss.backward();
    torch::nn::utils::clip_grad_norm_(parameters, 1.0);
    adam.step();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Part5Step(benchmark::State& state) {
  StageStep(state, "experiments/blog/05_cmb_priors.toml", {"runtime.dtype=float32"});
}
BENCHMARK(BM_Part5Step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5);

void BM_PhysicalStep(benchmark::State& state) {
  std::vector<std::string> set = {"runtime.dtype=float32"};
  if (const int64_t k = state.range(0); k > 0) {
    set.insert(set.end(), {"loss.sn.sample_bins=" + std::to_string(k), "loss.sn.rtol=1e-5", "loss.sn.atol=1e-6"});
  }
  StageStep(state, "experiments/baselines/physical_sky.toml", set);
}
BENCHMARK(BM_PhysicalStep)->Arg(0)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5);

}  // namespace
}  // namespace lumpy
