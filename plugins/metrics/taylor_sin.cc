#include "taylor_sin.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "taylor_sin_kernels.h"

namespace lumpy::siren {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The jet's channels: the value, then 4 first and 10 second derivatives.
int64_t Channels(int64_t order) { return order >= 2 ? 15 : order == 1 ? 5 : 1; }

// Where each layer's tensors lie: the weight [n, m] and bias [n] in the flat
// parameters (FlatParams' order), and per block of points its input h
// [p, C, m], product y [p, C, n] and (hidden layers) sin z, cos z [p, n] in
// one workspace, so that a jet allocates and saves two tensors whatever its
// depth (a ray's stages are 1-point jets, where each tensor costs more than
// its arithmetic).
struct Layout {
  struct Layer {
    int64_t n = 0, m = 0, weight = 0, bias = 0, h = 0, y = 0, s = 0, c = 0;
  };
  std::vector<Layer> layer;  // hidden layers, then the output layer
  int64_t params = 0, workspace = 0;

  Layout(const std::vector<int64_t>& dims, int64_t points, int64_t channels) {
    for (size_t i = 0; i < dims.size(); i += 2) {
      Layer l;
      l.n = dims[i];
      l.m = dims[i + 1];
      l.weight = params;
      l.bias = params + l.n * l.m;
      params = l.bias + l.n;
      layer.push_back(l);
    }
    for (size_t i = 0; i < layer.size(); ++i) {
      Layer& l = layer[i];
      l.h = workspace;
      l.y = l.h + points * channels * l.m;
      workspace = l.y + points * channels * l.n;
      if (i + 1 < layer.size()) {
        l.s = workspace;
        l.c = l.s + points * l.n;
        workspace = l.c + points * l.n;
      }
    }
  }
  int64_t hidden() const { return static_cast<int64_t>(layer.size()) - 1; }
};

// The order-0 node's backward when its own gradient is to be differentiated
// (create_graph): the metric again as tensor operations on the saved inputs
// (the parameters as views of the flat tensor), and their gradient with a
// graph.
variable_list RecomputedBackward(const torch::Tensor& x, const torch::Tensor& flat, const std::vector<int64_t>& dims,
                                 double clip, const torch::Tensor& grad_g) {
  const Layout lay(dims, x.size(0), 1);
  std::vector<torch::Tensor> params;
  for (const auto& ll : lay.layer) {
    params.push_back(flat.narrow(0, ll.weight, ll.n * ll.m).view({ll.n, ll.m}));
    params.push_back(flat.narrow(0, ll.bias, ll.n));
  }
  variable_list out = {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  if (!grad_g.defined()) return out;
  auto g = TensorMetric(x, params, clip);
  std::vector<torch::Tensor> wrt;
  std::vector<int> slot;
  if (x.requires_grad()) wrt.push_back(x), slot.push_back(0);
  if (flat.requires_grad()) wrt.push_back(flat), slot.push_back(1);
  if (wrt.empty()) return out;
  auto d = torch::autograd::grad({g}, wrt, {grad_g}, /*retain_graph=*/true, /*create_graph=*/true,
                                 /*allow_unused=*/true);
  for (size_t i = 0; i < d.size(); ++i) out[slot[i]] = d[i];
  return out;
}

// The whole jet as one autograd node: the input's channels, every sine layer,
// the output layer and the output map, each block of points through all of
// them while it is in cache. Inputs: x [B,4], the flat parameters and the
// layers' shapes dims = {n_0, m_0, n_1, m_1, ...} (the output layer last).
// Outputs: g, dg and (order 2) d2g.
struct FusedJet : public torch::autograd::Function<FusedJet> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& flat_in,
                               std::vector<int64_t> dims, double clip, int64_t order) {
    auto x = x_in.contiguous();
    auto flat = flat_in.contiguous();
    const int64_t points = x.size(0), channels = Channels(order);
    const Layout lay(dims, points, channels);
    const int64_t layers = lay.hidden();
    auto work = torch::empty({lay.workspace}, x.options());
    auto g = torch::empty({points, 4, 4}, x.options());
    auto dg = order >= 1 ? torch::empty({points, 4, 4, 4}, x.options()) : torch::empty({0}, x.options());
    auto d2g = order >= 2 ? torch::empty({points, 4, 4, 4, 4}, x.options())
                          : torch::empty({0}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "siren_fused_jet_forward", [&] {
      using T = scalar_t;
      const T* pp = flat.data_ptr<T>();
      T* wk = work.data_ptr<T>();
      const T* xp = x.data_ptr<T>();
      T* gp = g.data_ptr<T>();
      T* dgp = order >= 1 ? dg.data_ptr<T>() : nullptr;
      T* d2gp = order >= 2 ? d2g.data_ptr<T>() : nullptr;
      ForBlocks(points, BlockSize(points), [&](int64_t b0, int64_t b1) {
        const int64_t p = b1 - b0;
        {  // h = clip(x), dh_j/dx_k = [inside] delta_jk, second derivatives 0.
          T* h0 = wk + lay.layer[0].h + b0 * channels * 4;
          std::fill(h0, h0 + p * channels * 4, T(0));
          for (int64_t i = 0; i < p; ++i)
            for (int j = 0; j < 4; ++j) {
              const T v = xp[(b0 + i) * 4 + j];
              h0[i * channels * 4 + j] = std::min<T>(std::max<T>(v, -clip), clip);
              if (channels > 1) h0[i * channels * 4 + (1 + j) * 4 + j] = std::abs(v) < clip ? 1 : 0;
            }
        }
        for (int64_t l = 0; l <= layers; ++l) {
          const auto& ll = lay.layer[l];
          const int64_t m = ll.m, n = ll.n;
          T* yb = wk + ll.y + b0 * channels * n;
          Product<T>(wk + ll.h + b0 * channels * m, pp + ll.weight, yb, p * channels, m, n);
          if (l == layers) {
            for (int64_t i = 0; i < p; ++i)
              for (int64_t j = 0; j < n; ++j) yb[i * channels * n + j] += pp[ll.bias + j];
            break;
          }
          T* sb = wk + ll.s + b0 * n;
          T* cb = wk + ll.c + b0 * n;
          SinCos<T>(yb, pp + ll.bias, sb, cb, p, channels, n);
          ChainForward<T>(yb, sb, cb, wk + lay.layer[l + 1].h + b0 * channels * n, p, channels, n);
        }
        const T* yo = wk + lay.layer[layers].y;
        for (int64_t i = b0; i < b1; ++i) {
          OutputMap<T>(yo + i * channels * 10, channels, gp + i * 16, order >= 1 ? dgp + i * 64 : nullptr,
                       order >= 2 ? d2gp + i * 256 : nullptr);
        }
      });
    });
    // The inputs as given (x may be a view): a backward with create_graph
    // recomputes from them, connected to their graphs.
    ctx->save_for_backward({x_in, flat_in, work});
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["clip"] = clip;
    ctx->saved_data["order"] = order;
    if (order < 1) ctx->mark_non_differentiable({dg});
    if (order < 2) ctx->mark_non_differentiable({d2g});
    return {g, dg, d2g};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto dims = ctx->saved_data["dims"].toIntVector();
    const double clip = ctx->saved_data["clip"].toDouble();
    const int64_t order = ctx->saved_data["order"].toInt();
    // Grad mode is on in backward exactly when create_graph was asked.
    if (torch::GradMode::is_enabled()) {
      TORCH_CHECK(order == 0,
                  "siren: the fused Taylor jet of order >= 1 is not twice differentiable (create_graph = "
                  "true was asked); set fused = false or jet = \"autograd\"");
      return RecomputedBackward(saved[0], saved[1], dims, clip, grads[0]);
    }
    const auto x = saved[0].contiguous();
    const auto& flat = saved[1];
    const auto& work = saved[2];
    const int64_t points = x.size(0), channels = Channels(order);
    const Layout lay(dims, points, channels);
    const int64_t layers = lay.hidden();
    auto defined_or_zeros = [&](const torch::Tensor& t, at::IntArrayRef shape) {
      return t.defined() ? t.contiguous() : torch::zeros(shape, x.options());
    };
    auto gb = defined_or_zeros(grads[0], {points, 4, 4});
    auto dgb = order >= 1 ? defined_or_zeros(grads[1], {points, 4, 4, 4}) : torch::Tensor();
    auto d2gb = order >= 2 ? defined_or_zeros(grads[2], {points, 4, 4, 4, 4}) : torch::Tensor();
    const bool need_x = ctx->needs_input_grad(0);
    auto xb = need_x ? torch::zeros_like(x) : torch::Tensor();
    // The parameters' gradient: one partial sum per thread where several
    // blocks run (added up at the end), else written in place.
    const int64_t block = BlockSize(points);
    const int64_t parts = points > block ? at::get_num_threads() : 1;
    auto gflat = torch::zeros({parts, lay.params}, x.options());
    int64_t widest = 10;
    for (const auto& ll : lay.layer) widest = std::max({widest, ll.n, ll.m});
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "siren_fused_jet_backward", [&] {
      using T = scalar_t;
      const T* pp = flat.data_ptr<T>();
      const T* wk = work.data_ptr<T>();
      ForBlocks(points, block, [&](int64_t b0, int64_t b1) {
        const int64_t p = b1 - b0, part = parts == 1 ? 0 : at::get_thread_num();
        T* gpart = gflat.data_ptr<T>() + part * lay.params;
        // Two work buffers of a block's widest channels, used in turn.
        std::vector<T> buf_a(p * channels * widest), buf_b(p * channels * widest);
        T* ga = buf_a.data();  // dL/d(this layer's output)
        T* gy = buf_b.data();  // dL/d(this layer's product)
        const T* yo = wk + lay.layer[layers].y;
        for (int64_t i = 0; i < p; ++i) {
          const int64_t pt = b0 + i;
          OutputMapBackward<T>(yo + pt * channels * 10, channels, gb.data_ptr<T>() + pt * 16,
                               order >= 1 ? dgb.data_ptr<T>() + pt * 64 : nullptr,
                               order >= 2 ? d2gb.data_ptr<T>() + pt * 256 : nullptr,
                               ga + i * channels * 10);
        }
        for (int64_t l = layers; l >= 0; --l) {
          const auto& ll = lay.layer[l];
          const int64_t m = ll.m, n = ll.n, rows = p * channels;
          if (l < layers) {
            ChainBackward<T>(wk + ll.y + b0 * channels * n, wk + ll.s + b0 * n, wk + ll.c + b0 * n, ga, gy, p,
                             channels, n);
          } else {
            std::swap(ga, gy);  // the output layer has no sine
          }
          WeightGrad<T>(gy, wk + ll.h + b0 * channels * m, gpart + ll.weight, rows, m, n);
          T* gbl = gpart + ll.bias;
          for (int64_t i = 0; i < p; ++i)
            for (int64_t j = 0; j < n; ++j) gbl[j] += gy[i * channels * n + j];
          if (l == 0 && !need_x) break;
          InputGrad<T>(gy, pp + ll.weight, ga, rows, m, n);  // ga: dL/d(layer input)
        }
        if (need_x) {  // only the value channel depends on x (through the clip)
          const T* xp = x.data_ptr<T>() + b0 * 4;
          T* xbp = xb.data_ptr<T>() + b0 * 4;
          for (int64_t i = 0; i < p; ++i)
            for (int j = 0; j < 4; ++j)
              xbp[i * 4 + j] = std::abs(xp[i * 4 + j]) <= clip ? ga[i * channels * 4 + j] : T(0);
        }
      });
    });
    return {xb, parts == 1 ? gflat.view({lay.params}) : gflat.sum(0), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

void CheckShapes(const torch::Tensor& h, const torch::Tensor& weight, const torch::Tensor& bias) {
  TORCH_CHECK(h.dim() == 3 && (h.size(1) == 1 || h.size(1) == 5 || h.size(1) == 15),
              "siren: jet channels must be [B, 1|5|15, m], got ", h.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == h.size(2) && bias.dim() == 1 &&
                  bias.size(0) == weight.size(0),
              "siren: weight [n, m] and bias [n] do not fit channels ", h.sizes());
}

// The same layers as tensor operations, differentiated by autograd.
torch::Tensor TensorLinear(const torch::Tensor& h, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  auto y = torch::matmul(h, weight.t());
  return torch::cat({(y.select(1, 0) + bias).unsqueeze(1), y.narrow(1, 1, y.size(1) - 1)}, 1);
}

torch::Tensor TensorSin(const torch::Tensor& h, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  auto y = torch::matmul(h, weight.t());
  auto z = y.select(1, 0) + bias;
  auto s = torch::sin(z), c = torch::cos(z);
  const int64_t channels = y.size(1);
  if (channels == 1) return s.unsqueeze(1);
  auto zk = y.narrow(1, 1, 4);
  auto ak = c.unsqueeze(1) * zk;
  if (channels == 5) return torch::cat({s.unsqueeze(1), ak}, 1);
  auto pk = PairIndex(kPairK, y.device()), pl = PairIndex(kPairL, y.device());
  auto akl = c.unsqueeze(1) * y.narrow(1, 5, 10) -
             s.unsqueeze(1) * zk.index_select(1, pk) * zk.index_select(1, pl);
  return torch::cat({s.unsqueeze(1), ak, akl}, 1);
}

}  // namespace

torch::Tensor PairIndex(const int64_t (&pairs)[10], const torch::Device& device) {
  return torch::tensor(std::vector<int64_t>(pairs, pairs + 10),
                       torch::TensorOptions().dtype(torch::kLong).device(device));
}

torch::Tensor TaylorSinLayer(const torch::Tensor& h, const torch::Tensor& weight,
                             const torch::Tensor& bias) {
  CheckShapes(h, weight, bias);
  return TensorSin(h, weight, bias);
}

torch::Tensor TaylorLinearLayer(const torch::Tensor& h, const torch::Tensor& weight,
                                const torch::Tensor& bias) {
  CheckShapes(h, weight, bias);
  return TensorLinear(h, weight, bias);
}

torch::Tensor DiagonalSign(const torch::TensorOptions& options) {
  return torch::tensor(std::vector<double>(std::begin(kDiagonalSign), std::end(kDiagonalSign)), options);
}

torch::Tensor MetricIndex(const torch::Device& device) {
  return torch::tensor(std::vector<int64_t>(std::begin(kMetricIndex), std::end(kMetricIndex)),
                       torch::TensorOptions().dtype(torch::kLong).device(device));
}

torch::Tensor TensorMetric(const torch::Tensor& x, const std::vector<torch::Tensor>& params, double clip) {
  auto h = torch::clamp(x, -clip, clip);
  const size_t out = params.size() - 2;
  for (size_t i = 0; i < out; i += 2) h = torch::sin(torch::addmm(params[i + 1], h, params[i].t()));
  auto o = torch::addmm(params[out + 1], h, params[out].t());
  auto values = torch::cat({torch::exp(o.narrow(1, 0, 4)) * DiagonalSign(o.options()), o.narrow(1, 4, 6)}, 1);
  return values.index_select(1, MetricIndex(x.device())).view({-1, 4, 4});
}

bool FusedJetApplies(const torch::Tensor& x) {
  return x.device().is_cpu() &&
         (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64);
}

const torch::Tensor& FlatParams::Get(const std::vector<torch::Tensor>& params) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool grad = torch::GradMode::is_enabled();
  bool fresh = flat_.defined() && grad == grad_mode_ && key_.size() == params.size();
  const auto* kept = fresh ? static_cast<const char*>(flat_.data_ptr()) : nullptr;
  for (size_t i = 0; fresh && i < params.size(); ++i) {
    const auto& p = params[i];
    const Key& k = key_[i];
    fresh = k.impl == p.unsafeGetTensorImpl() && k.data == p.data_ptr() &&
            k.requires_grad == p.requires_grad() && p.is_contiguous() && p.scalar_type() == flat_.scalar_type() &&
            p.numel() * static_cast<int64_t>(p.element_size()) == k.bytes &&
            std::memcmp(p.data_ptr(), kept + k.offset, k.bytes) == 0;
  }
  if (fresh) return flat_;
  std::vector<torch::Tensor> flat;
  key_.clear();
  int64_t offset = 0;
  for (const auto& p : params) {
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    flat.push_back(p.reshape({-1}));
    key_.push_back({p.unsafeGetTensorImpl(), p.data_ptr(), offset, bytes, p.requires_grad()});
    offset += bytes;
  }
  flat_ = torch::cat(flat);
  grad_mode_ = grad;
  return flat_;
}

Jet FusedTaylorJet(const torch::Tensor& x, const std::vector<torch::Tensor>& params, double clip, int order,
                   FlatParams* cache) {
  TORCH_CHECK(order >= 0 && order <= 2, "siren: the fused jet is of order 0, 1 or 2, got ", order);
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 4, "siren: points must be [B,4], got ", x.sizes());
  TORCH_CHECK(params.size() >= 4 && params.size() % 2 == 0 && params.back().size(0) == 10,
              "siren: the fused jet needs weight, bias pairs ending in the 10-output layer");
  std::vector<int64_t> dims;
  for (size_t i = 0; i < params.size(); i += 2) {
    const auto& w = params[i];
    TORCH_CHECK(w.dim() == 2 && params[i + 1].dim() == 1 && params[i + 1].size(0) == w.size(0) &&
                    w.size(1) == (i == 0 ? 4 : params[i - 2].size(0)),
                "siren: layer ", i / 2, " has weight ", w.sizes(), " and bias ", params[i + 1].sizes());
    dims.push_back(w.size(0));
    dims.push_back(w.size(1));
  }
  FlatParams local;
  const torch::Tensor& flat = (cache != nullptr ? cache : &local)->Get(params);
  auto out = FusedJet::apply(x, flat, dims, clip, static_cast<int64_t>(order));
  Jet jet;
  jet.order = order;
  jet.g = out[0];
  if (order >= 1) jet.dg = out[1];
  if (order >= 2) jet.d2g = out[2];
  return jet;
}

}  // namespace lumpy::siren
