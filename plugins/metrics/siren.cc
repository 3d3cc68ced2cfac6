// siren: the lumpyspace metric network (PHYSICS.md, "Metric network").
//
// 4 inputs (t,x,y,z), clipped to [-clip, clip] -> `layers` hidden layers of
// `hidden` units with sin activation -> 10 outputs o0..o9 mapped to
//   g00 = -exp(o0), g11,g22,g33 = exp(o1..o3), g01,g02,g03,g12,g13,g23 = o4..o9.

#include <cmath>

#include "lumpy/lumpy.h"

namespace {

class SirenImpl : public lumpy::MetricModel {
 public:
  explicit SirenImpl(const lumpy::Params& p) : clip_(p.GetDouble("clip")) {
    const int64_t hidden = p.GetInt("hidden");
    const int64_t layers = p.GetInt("layers");
    int64_t fan_in = 4;
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < layers; ++i) {
      auto layer = register_module("hidden" + std::to_string(i),
                                   torch::nn::Linear(fan_in, hidden));
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      layer->weight.uniform_(-bound, bound);
      layer->bias.uniform_(-bound, bound);
      hidden_.push_back(layer);
      fan_in = hidden;
    }
    // The first layer's spatial weight columns and its biases scale with omega0.
    const double omega0 = p.GetDouble("omega0");
    hidden_[0]->weight.narrow(1, 1, 3).mul_(omega0);
    hidden_[0]->bias.mul_(omega0);
    out_ = register_module("out", torch::nn::Linear(fan_in, 10));
    const double std = p.GetDouble("output_init_std");
    out_->weight.normal_(0.0, std);
    out_->bias.normal_(0.0, std);
    // g_ij from the 10 mapped outputs [-e^o0, e^o1, e^o2, e^o3, o4..o9]. Not a
    // buffer: Module::to(dtype) would turn the indices into floats.
    index_ = torch::tensor({0, 4, 5, 6, 4, 1, 7, 8, 5, 7, 2, 9, 6, 8, 9, 3}, torch::kLong);
  }

  torch::Tensor metric(const torch::Tensor& x) {
    auto h = torch::clamp(x, -clip_, clip_);
    for (auto& layer : hidden_) h = torch::sin(layer(h));
    auto o = out_(h);
    auto diag = torch::exp(o.narrow(1, 0, 4)) *
                torch::tensor({-1.0, 1.0, 1.0, 1.0}, o.options()).view({1, 4});
    auto values = torch::cat({diag, o.narrow(1, 4, 6)}, 1);
    return values.index_select(1, index_.to(values.device())).view({-1, 4, 4});
  }

  lumpy::Jet jet(const torch::Tensor& x, int order) override {
    const bool keep_graph = torch::GradMode::is_enabled();
    return lumpy::AutogradJet([this](const torch::Tensor& xx) { return metric(xx); }, x, order,
                              keep_graph);
  }

 private:
  double clip_;
  std::vector<torch::nn::Linear> hidden_;
  torch::nn::Linear out_{nullptr};
  torch::Tensor index_;
};
TORCH_MODULE(Siren);

absl::Status Register(lumpy::Registry& registry) {
  using lumpy::ParamSpec;
  return registry.AddMetric(
      "siren",
      "SIREN network metric: (t,x,y,z) -> sin MLP -> g_mn (g00 = -exp, g_ii = exp, off-diagonal "
      "linear); starts near Minkowski",
      {
          ParamSpec::Int("hidden", "units per hidden layer").Default(int64_t{64}).AtLeast(1),
          ParamSpec::Int("layers", "hidden layers").Default(int64_t{4}).AtLeast(1).AtMost(64),
          ParamSpec::Double("omega0", "first-layer frequency scale of x,y,z and biases (1 = off)")
              .Default(1.0)
              .Greater(0),
          ParamSpec::Double("output_init_std", "std of the last layer's initial weights and biases")
              .Default(1e-4)
              .AtLeast(0),
          ParamSpec::Double("clip", "inputs are clipped to [-clip, clip]").Default(6.0).Greater(0),
      },
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::MetricModel>> {
        return Siren(p).ptr();
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
