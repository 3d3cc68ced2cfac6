// spatial_weight_net (part 3): a small MLP W(t,x,y,z), 4 -> hidden -> hidden
// -> 1 with tanh, trained with the metric (the network group, clipped with
// it). The domain's per-point totals l_i (objectives and constraint
// penalties) become mean_i( 1/2 e^(-2 W(x_i)) l_i + W(x_i) ): points where the
// loss stays high are down-weighted at a logarithmic cost, so the weight maps
// where the metric network struggles.
//
// Every layer starts as Equinox's (and LibTorch's) default, weights and
// biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the reference's W network
// (metric.py@f2c0bec:45-52), so W != 0 at the start (factors e^(-2W) of
// about 0.4-2.7); output_init = "zero" starts from W = 0 everywhere instead
// (the plain mean of l/2).
//
// w_min (optional, not in the reference): a smooth lower bound,
// W = w_min + softplus(W_net - w_min). The reduction's minimum in W is
// W = 1/2 log l, so where a constraint holds exactly (l -> 0) W drifts down
// without end (about -0.35 per 1000 steps in parts 3-4, -17 by step 27,000
// of part 5) and the factor e^(-2W) reaches 1e15; part 5's metric then
// stopped learning (most likely this term's gradient dwarfing every other
// one inside the global clip). The bound caps the factor at e^(-2 w_min), as log-variance
// clamps do for homoscedastic weighting (Kendall, Gal & Cipolla 2018); the
// softplus keeps a gradient, so W can rise again where the loss returns.

#include <optional>

#include "lumpy/lumpy.h"

namespace {

class SpatialWeightNetImpl : public lumpy::CurriculumWeighter {
 public:
  explicit SpatialWeightNetImpl(const lumpy::Params& p) {
    if (p.Has("w_min")) w_min_ = p.GetDouble("w_min");
    const int64_t h = p.GetInt("hidden");
    l0_ = register_module("l0", torch::nn::Linear(4, h));
    l1_ = register_module("l1", torch::nn::Linear(h, h));
    l2_ = register_module("l2", torch::nn::Linear(h, 1));
    if (p.GetString("output_init") == "zero") {
      torch::NoGradGuard no_grad;
      l2_->weight.zero_();
      l2_->bias.zero_();
    }
  }

  torch::Tensor weight_exponent(const torch::Tensor& points) {
    auto h = torch::tanh(l0_(points.to(l0_->weight.dtype())));
    h = torch::tanh(l1_(h));
    auto w = l2_(h).squeeze(-1);
    if (w_min_) w = *w_min_ + torch::softplus(w - *w_min_);
    return w;
  }

  torch::Tensor reduce(const torch::Tensor& points, const torch::Tensor& per_point) override {
    auto w = weight_exponent(points).to(per_point.dtype());
    auto weighted = 0.5 * torch::exp(-2.0 * w) * per_point + w;
    {
      torch::NoGradGuard no_grad;
      mean_w_ = w.mean().item<double>();
      mean_factor_ = torch::exp(-2.0 * w).mean().item<double>();
    }
    return weighted.mean();
  }

  // mean W and mean e^(-2W) over the last step's points.
  std::vector<std::pair<std::string, double>> telemetry() const override {
    return {{"mean_w", mean_w_}, {"mean_weight", mean_factor_}};
  }

 private:
  torch::nn::Linear l0_{nullptr}, l1_{nullptr}, l2_{nullptr};
  std::optional<double> w_min_;
  double mean_w_ = 0, mean_factor_ = 1;
};

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddCurriculum(
      "spatial_weight_net",
      "learned spatial weights: mean(1/2 e^(-2W(x)) l(x) + W(x)), W an MLP 4->h->h->1 (tanh)",
      {lumpy::ParamSpec::Int("hidden", "width of W's two hidden layers").Default(int64_t{16}).AtLeast(1).AtMost(1024),
       lumpy::ParamSpec::String("output_init",
                                "W's last layer at the start: default (uniform +-1/sqrt(fan_in), as "
                                "the reference's Equinox MLP) or zero (W = 0 everywhere)")
           .Default(std::string("default"))
           .OneOf({"default", "zero"}),
       lumpy::ParamSpec::Double("w_min",
                                "optional smooth lower bound on W (W = w_min + softplus(W_net - w_min)): "
                                "caps the factor e^(-2W) near e^(-2 w_min) where a constraint holds "
                                "exactly; unset (the reference) lets W fall without end")
           .Optional()
           .AtLeast(-30)
           .AtMost(10)},
      lumpy::FactoryOf<SpatialWeightNetImpl>());
}

}  // namespace

LUMPY_PLUGIN(Register)
