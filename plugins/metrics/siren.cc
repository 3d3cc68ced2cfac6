// siren: the lumpyspace metric network (docs/physics.md, "The metric network").
//
// 4 inputs (t,x,y,z), clipped to [-clip, clip] -> `layers` hidden layers of
// `hidden` units with sin activation -> 10 outputs o0..o9 mapped to
//   g00 = -exp(o0), g11,g22,g33 = exp(o1..o3), g01,g02,g03,g12,g13,g23 = o4..o9.
//
// The jet is propagated forward (Taylor mode): every layer carries the value,
// the 4 first and the 10 distinct second coordinate derivatives of its
// activations as 1 + 4 + 10 channels, pushed through each weight matrix in
// one matrix product (sin' = cos, sin'' = -sin; the clip's derivative is 0
// outside the box). One reverse pass then gives parameter gradients.
// `jet = "autograd"` selects the SDK's nested-autograd jet instead (the
// oracle the Taylor jet is tested against).

#include <cmath>
#include <memory>

#include "lumpy/lumpy.h"
#include "taylor_sin.h"

namespace {

class SirenImpl : public lumpy::MetricModel {
 public:
  explicit SirenImpl(const lumpy::Params& p)
      : clip_(p.GetDouble("clip")),
        taylor_(p.GetString("jet") == "taylor"),
        fused_(p.GetBool("fused")) {
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
  }

  torch::Tensor metric(const torch::Tensor& x) { return lumpy::siren::TensorMetric(x, Params(), clip_); }

  // {W_0, b_0, ..., W_out, b_out}: the layers as the fused jet takes them.
  std::vector<torch::Tensor> Params() {
    std::vector<torch::Tensor> params;
    for (auto& layer : hidden_) {
      params.push_back(layer->weight);
      params.push_back(layer->bias);
    }
    params.push_back(out_->weight);
    params.push_back(out_->bias);
    return params;
  }

  lumpy::Jet jet(const torch::Tensor& x, int order) override {
    TORCH_CHECK(order >= 0 && order <= 2, "siren: jet order must be 0, 1 or 2, got ", order);
    if (order == 0) {
      // The fused node where it applies (one node; the sine's cosine kept from
      // the forward pass), else the layers as tensor operations.
      if (taylor_ && fused_ && lumpy::siren::FusedJetApplies(x)) return TaylorJet(x, 0);
      return {metric(x), {}, {}, 0};
    }
    if (!taylor_) {
      const bool keep_graph = torch::GradMode::is_enabled();
      return lumpy::AutogradJet([this](const torch::Tensor& xx) { return metric(xx); }, x, order,
                                keep_graph);
    }
    return TaylorJet(x, order);
  }

 private:
  // Channels [B, C, n]: 0 value, 1..4 d/dx_k, 5..14 d2/dx_k dx_l (pairs).
  lumpy::Jet TaylorJet(const torch::Tensor& x, int order) {
    if (fused_ && lumpy::siren::FusedJetApplies(x)) {
      return lumpy::siren::FusedTaylorJet(x, Params(), clip_, order, flat_.get());
    }
    const int64_t batch = x.size(0);
    const auto pair_k = lumpy::siren::PairIndex(lumpy::siren::kPairK, x.device());
    const auto pair_l = lumpy::siren::PairIndex(lumpy::siren::kPairL, x.device());

    // The input's channels: h = clip(x), dh_j/dx_k = [inside] delta_jk
    // (the clip's derivative is 0 outside the box), second derivatives 0.
    auto inside = (x.abs() < clip_).to(x.dtype());                        // [B,4]
    std::vector<torch::Tensor> input = {torch::clamp(x, -clip_, clip_).unsqueeze(1),
                                        torch::diag_embed(inside)};        // [B,1,4], [B,4,4]
    if (order >= 2) input.push_back(torch::zeros({batch, 10, 4}, x.options()));
    auto h = torch::cat(input, 1);                                          // [B,C,4]
    // Every layer: all channels through the weight matrix in one product,
    // then the sine's chain rule on the channels (tensor operations).
    for (auto& layer : hidden_) {
      h = lumpy::siren::TaylorSinLayer(h, layer->weight, layer->bias);
    }
    auto y = lumpy::siren::TaylorLinearLayer(h, out_->weight, out_->bias);  // [B,C,10]
    auto o = y.select(1, 0);                                                // [B,10]
    auto ok = y.narrow(1, 1, 4);                                            // [B,4,10]
    // Output map. Diagonal: e = sign exp(o): e_k = e o_k, e_kl = e (o_kl + o_k o_l).
    auto sign = lumpy::siren::DiagonalSign(o.options());
    auto e = torch::exp(o.narrow(1, 0, 4)) * sign;                  // [B,4]
    auto value = torch::cat({e, o.narrow(1, 4, 6)}, 1);             // [B,10]
    auto first = torch::cat({e.unsqueeze(1) * ok.narrow(2, 0, 4), ok.narrow(2, 4, 6)}, 2);
    const auto idx = lumpy::siren::MetricIndex(x.device());
    lumpy::Jet jet;
    jet.order = order;
    jet.g = value.index_select(1, idx).view({batch, 4, 4});
    // [B,k,16] -> [B,4,4,k]
    jet.dg = first.index_select(2, idx).view({batch, 4, 4, 4}).permute({0, 2, 3, 1});
    if (order >= 2) {
      auto okl = y.narrow(1, 5, 10);                                // [B,10,10]
      auto od = ok.narrow(2, 0, 4);
      auto second_diag = e.unsqueeze(1) * (okl.narrow(2, 0, 4) +
                                           od.index_select(1, pair_k) * od.index_select(1, pair_l));
      auto second = torch::cat({second_diag, okl.narrow(2, 4, 6)}, 2);  // [B,10 pairs,10]
      const auto pair_of = torch::tensor(std::vector<int64_t>(std::begin(lumpy::siren::kPairOf),
                                                              std::end(lumpy::siren::kPairOf)),
                                         torch::TensorOptions().dtype(torch::kLong).device(x.device()));
      jet.d2g = second.index_select(1, pair_of)
                    .index_select(2, idx)
                    .view({batch, 4, 4, 4, 4})
                    .permute({0, 3, 4, 1, 2});                       // [B,i,j,k,l]
    }
    return jet;
  }

  double clip_;
  bool taylor_;
  // The parameters as one tensor for the fused jet, kept while they are unchanged.
  std::shared_ptr<lumpy::siren::FlatParams> flat_ = std::make_shared<lumpy::siren::FlatParams>();
  bool fused_;
  std::vector<torch::nn::Linear> hidden_;
  torch::nn::Linear out_{nullptr};
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
          ParamSpec::String("jet", "taylor: forward-propagated jet (fast); autograd: nested "
                                   "reverse mode (the oracle)")
              .Default(std::string("taylor"))
              .OneOf({"taylor", "autograd"}),
          ParamSpec::Bool("fused", "taylor jet on the CPU: the whole jet as one hand-written node "
                                   "(false: tensor operations; same numbers, slower)")
              .Default(true),
      },
      [](const lumpy::Params& p) -> absl::StatusOr<std::shared_ptr<lumpy::MetricModel>> {
        return Siren(p).ptr();
      });
}

}  // namespace

LUMPY_PLUGIN(Register)
