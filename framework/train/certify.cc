#include "train/certify.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "physics/point_set_context.h"

namespace lumpy {

namespace {

// The union of the domain's strata in t, and its box: [lo, hi] each [4].
std::pair<std::vector<double>, std::vector<double>> Box(const DomainSpec& d) {
  double t0 = INFINITY, t1 = -INFINITY;
  for (const auto& s : d.strata) {
    t0 = std::min(t0, s.t_min);
    t1 = std::max(t1, s.t_max);
  }
  return {{t0, d.x[0], d.y[0], d.z[0]}, {t1, d.x[1], d.y[1], d.z[1]}};
}

// Grid nodes per axis: {n_t, n_s} with n_s^4 <= points.
std::pair<int64_t, int64_t> GridShape(int64_t points) {
  int64_t ns = std::max<int64_t>(1, static_cast<int64_t>(std::floor(std::pow(points, 0.25))));
  while ((ns + 1) * (ns + 1) * (ns + 1) * (ns + 1) <= points) ++ns;
  while (ns > 1 && ns * ns * ns * ns > points) --ns;
  const int64_t nt = std::max<int64_t>(1, std::llround(static_cast<double>(points) / (ns * ns * ns)));
  return {nt, ns};
}

std::vector<double> Row(const torch::Tensor& points, int64_t i) {
  auto p = points[i].to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + 4);
}

// Puts the model's floating-point parameters and buffers in float64 for the
// certificate and each back in its own dtype (the same tensors, data swapped:
// the optimizer's references stay valid; float32 -> float64 -> float32 is
// exact). Integer buffers are left alone.
class Float64Model {
 public:
  explicit Float64Model(MetricModel& model) {
    torch::NoGradGuard no_grad;
    auto add = [&](torch::Tensor& t) {
      if (!t.is_floating_point() || t.scalar_type() == torch::kFloat64) return;
      kept_.push_back({t, t.scalar_type()});
      t.set_data(t.to(torch::kFloat64));
    };
    for (auto& p : model.parameters(/*recurse=*/true)) add(p);
    for (auto& b : model.buffers(/*recurse=*/true)) add(b);
  }
  ~Float64Model() {
    torch::NoGradGuard no_grad;
    for (auto& [t, dtype] : kept_) t.set_data(t.to(dtype));
  }

 private:
  std::vector<std::pair<torch::Tensor, torch::ScalarType>> kept_;
};

// Values to minimise at points [N,4], +inf where not finite.
using Objective = std::function<torch::Tensor(const torch::Tensor&)>;

torch::Tensor Finite(const torch::Tensor& v) {
  return torch::where(torch::isfinite(v), v, torch::full_like(v, INFINITY));
}

}  // namespace

torch::Tensor HeldOutGrid(const DomainSpec& d, int64_t points, const torch::TensorOptions& options) {
  const auto [nt, ns] = GridShape(points);
  const auto [lo, hi] = Box(d);
  auto nodes = [&](int axis, int64_t n) {
    if (n == 1) return torch::full({1}, 0.5 * (lo[axis] + hi[axis]), options);
    return torch::linspace(lo[axis], hi[axis], n, options);
  };
  auto grid = torch::meshgrid({nodes(0, nt), nodes(1, ns), nodes(2, ns), nodes(3, ns)}, "ij");
  return torch::stack({grid[0].flatten(), grid[1].flatten(), grid[2].flatten(), grid[3].flatten()}, 1);
}

CertifyOptions CertifyOptionsOf(const Experiment& exp) {
  CertifyOptions o;
  o.refine_worst = exp.certify.GetInt("refine_worst");
  o.refine_random = exp.certify.GetInt("refine_random");
  o.iterations = exp.certify.GetInt("refine_iterations");
  o.seed = static_cast<uint64_t>(exp.runtime.GetInt("seed"));
  return o;
}

namespace {

// Projected gradient descent in unit coordinates u = (x - lo) / span of the
// box, one step size per start (see Descend in certify.h).
class Descent {
 public:
  Descent(const Objective& f, const torch::Tensor& starts, const torch::Tensor& lo, const torch::Tensor& hi)
      : f_(f),
        options_(starts.options().dtype(torch::kFloat64)),
        lo_(lo.to(options_).view({1, 4})),
        span_(hi.to(options_).view({1, 4}) - lo_),
        n_(starts.size(0)),
        u_(((starts.to(options_) - lo_) / span_).clamp(0, 1)),
        grad_(torch::zeros({n_, 4}, torch::kFloat64)),
        alpha_(n_, -1.0),
        active_(n_, 1),
        need_grad_(n_, 1) {
    fu_ = Evaluate(u_);
  }

  DescentResult Run(int64_t iterations) {
    for (int64_t it = 0; it < iterations; ++it) {
      Gradients();
      if (!Step()) break;
    }
    const int64_t best = fu_.argmin().item<int64_t>();
    out_.value = fu_[best].item<double>();
    out_.at = Row(X(u_), best);
    return out_;
  }

 private:
  torch::Tensor X(const torch::Tensor& u) const { return lo_ + u * span_; }
  torch::Tensor Evaluate(const torch::Tensor& u) {
    out_.evaluations += u.size(0);
    return Finite(f_(X(u))).to(torch::kCPU);
  }

  // Central differences (h = 1e-5 in u) at the starts that moved.
  void Gradients() {
    constexpr double kH = 1e-5;
    std::vector<int64_t> rows;
    for (int64_t j = 0; j < n_; ++j) {
      if (active_[j] && need_grad_[j]) rows.push_back(j);
    }
    if (rows.empty()) return;
    auto offsets = torch::zeros({8, 4}, options_);
    for (int i = 0; i < 4; ++i) {
      offsets[2 * i][i] = kH;
      offsets[2 * i + 1][i] = -kH;
    }
    auto base = u_.index_select(0, torch::tensor(rows, torch::kLong).to(options_.device()));
    auto fp = Evaluate((base.unsqueeze(1) + offsets.unsqueeze(0)).view({-1, 4})).view({-1, 8});
    using torch::indexing::Slice;
    auto g = (fp.index({Slice(), Slice(0, 8, 2)}) - fp.index({Slice(), Slice(1, 8, 2)})) / (2 * kH);
    auto gx_norm = (g / span_.to(torch::kCPU)).norm(2, 1);  // |grad f| in x
    for (size_t k = 0; k < rows.size(); ++k) {
      const int64_t j = rows[k];
      const double gn = gx_norm[k].item<double>();
      if (!std::isfinite(gn)) {
        active_[j] = 0;
        continue;
      }
      out_.max_gradient = std::max(out_.max_gradient, gn);
      grad_[j].copy_(g[k]);
      need_grad_[j] = 0;
      const double gu = g[k].norm().item<double>();
      if (alpha_[j] < 0) alpha_[j] = gu > 0 ? 0.01 / gu : 0.0;  // a first step of 1% of the box
    }
  }

  // One projected trial step per active start: accepted on sufficient
  // decrease (the step doubles), else rejected (it shrinks by 4). False once
  // every start has converged.
  bool Step() {
    std::vector<int64_t> rows;
    for (int64_t j = 0; j < n_; ++j) {
      if (!active_[j]) continue;
      if (!(alpha_[j] * grad_[j].norm().item<double>() > 1e-12)) {
        active_[j] = 0;  // converged (or a flat start: nothing to follow)
        continue;
      }
      rows.push_back(j);
    }
    if (rows.empty()) return false;
    auto idx = torch::tensor(rows, torch::kLong);
    std::vector<double> a(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) a[k] = alpha_[rows[k]];
    auto base = u_.index_select(0, idx.to(options_.device()));
    auto g = grad_.index_select(0, idx);
    auto trial = (base - (torch::tensor(a, torch::kFloat64).view({-1, 1}) * g).to(options_)).clamp(0, 1);
    auto ft = Evaluate(trial);
    auto moved = (base - trial).to(torch::kCPU);
    for (size_t k = 0; k < rows.size(); ++k) {
      const int64_t j = rows[k];
      const double f0 = fu_[j].item<double>(), f1 = ft[k].item<double>();
      const double decrease = (g[k] * moved[k]).sum().item<double>();  // >= 0 along the projected step
      if (f1 <= f0 - 1e-4 * decrease && f1 < f0) {
        u_[j].copy_(trial[k]);
        fu_[j] = f1;
        alpha_[j] *= 2.0;
        need_grad_[j] = 1;
      } else {
        alpha_[j] /= 4.0;
      }
    }
    return true;
  }

  const Objective& f_;
  torch::TensorOptions options_;
  torch::Tensor lo_, span_;
  int64_t n_;
  torch::Tensor u_, fu_, grad_;
  std::vector<double> alpha_;
  std::vector<char> active_, need_grad_;
  DescentResult out_;
};

}  // namespace

DescentResult Descend(const Objective& f, const torch::Tensor& starts, const torch::Tensor& lo,
                      const torch::Tensor& hi, int64_t iterations) {
  torch::NoGradGuard no_grad;
  if (starts.size(0) == 0) return {};
  return Descent(f, starts, lo, hi).Run(iterations);
}

namespace {

// One constrained domain's certificate (see Certify).
class DomainCertificate {
 public:
  DomainCertificate(Components& c, const DomainSpec& d, std::vector<LossComponent*> constraints,
                    int64_t points, const torch::TensorOptions& options, const CertifyOptions& o,
                    at::Generator* generator)
      : c_(c), d_(d), constraints_(std::move(constraints)), points_(points), options_(options), o_(o),
        generator_(generator), grid_(HeldOutGrid(d, points, options)) {
    const auto [lo, hi] = Box(d);
    lo_v_ = lo;
    hi_v_ = hi;
  }

  nlohmann::json Run(int64_t chunk) {
    Grid(chunk);
    nlohmann::json dj;
    const auto r = r_.nan_to_num(INFINITY);
    const int64_t r_at = r.argmin().item<int64_t>();
    dj["points"] = grid_.size(0);
    dj["ricci_min"] = r[r_at].item<double>();
    dj["ricci_min_at"] = Row(grid_, r_at);
    int64_t non_finite = (~torch::isfinite(r_)).sum().item<int64_t>();
    const bool refine = o_.refine_worst + o_.refine_random > 0;
    int64_t evaluations = 0;
    for (size_t k = 0; k < constraints_.size(); ++k) {
      non_finite += (~torch::isfinite(v_[k])).sum().item<int64_t>();
      dj["constraints"][constraints_[k]->spec->name] = Constraint(k, refine, &evaluations);
    }
    dj["non_finite"] = non_finite;
    if (refine) dj["refined"] = RefinedRicci(r, r_at, &evaluations);
    return dj;
  }

 private:
  torch::Tensor Ricci(const torch::Tensor& x) {
    PointSetContext ctx(*c_.model, x);
    return ctx.geometry(2).ricci_scalar();
  }
  torch::Tensor Violation(size_t k, const torch::Tensor& x) {
    PointSetContext ctx(*c_.model, x);
    return constraints_[k]->term->evaluate(ctx).per_point.detach();
  }

  // R and every constraint's violation on the grid (CPU float64), from one
  // jet and geometry per chunk that every term shares.
  void Grid(int64_t chunk) {
    const int64_t n = grid_.size(0);
    std::vector<torch::Tensor> r_parts;
    std::vector<std::vector<torch::Tensor>> v_parts(constraints_.size());
    for (int64_t start = 0; start < n; start += chunk) {
      PointSetContext ctx(*c_.model, grid_.narrow(0, start, std::min(chunk, n - start)));
      r_parts.push_back(ctx.geometry(2).ricci_scalar().to(torch::kCPU, torch::kFloat64));
      for (size_t k = 0; k < constraints_.size(); ++k) {
        v_parts[k].push_back(constraints_[k]->term->evaluate(ctx).per_point.detach().to(torch::kCPU, torch::kFloat64));
      }
    }
    r_ = torch::cat(r_parts);
    for (auto& parts : v_parts) v_.push_back(torch::cat(parts));
  }

  // The descents' starts: the grid points of the lowest scores, and random
  // points of the box (from the certificate's own generator).
  torch::Tensor Starts(const torch::Tensor& score) {
    const int64_t k = std::min<int64_t>(o_.refine_worst, grid_.size(0));
    auto worst = std::get<1>(score.topk(k, 0, /*largest=*/false));
    auto lo = torch::tensor(lo_v_, options_), hi = torch::tensor(hi_v_, options_);
    auto u = torch::rand({o_.refine_random, 4}, *generator_, torch::TensorOptions().dtype(torch::kFloat64));
    return torch::cat({grid_.index_select(0, worst.to(grid_.device())), lo + u.to(options_) * (hi - lo)});
  }
  DescentResult Search(const Objective& f, const torch::Tensor& score) {
    return Descend(f, Starts(score), torch::tensor(lo_v_, options_), torch::tensor(hi_v_, options_),
                   o_.iterations);
  }

  nlohmann::json Constraint(size_t k, bool refine, int64_t* evaluations) {
    const auto v = v_[k].nan_to_num(INFINITY, INFINITY, -INFINITY);
    const int64_t at = v.argmax().item<int64_t>();
    nlohmann::json cj;
    cj["max"] = v[at].item<double>();
    cj["mean"] = v.sum().item<double>() / static_cast<double>(grid_.size(0));
    cj["max_at"] = Row(grid_, at);
    if (!refine) return cj;
    auto found = Search([&](const torch::Tensor& x) { return -Violation(k, x); }, -v);
    const bool better = -found.value >= cj["max"].get<double>();
    cj["refined_max"] = better ? -found.value : cj["max"].get<double>();
    cj["refined_max_at"] = better ? found.at : Row(grid_, at);
    cj["refined_evaluations"] = found.evaluations;
    *evaluations += found.evaluations;
    return cj;
  }

  nlohmann::json RefinedRicci(const torch::Tensor& r, int64_t r_at, int64_t* evaluations) {
    auto found = Search([&](const torch::Tensor& x) { return Ricci(x); }, r);
    // Never above the grid: the grid minimum is a start of its own.
    const double grid_min = r[r_at].item<double>();
    if (!(found.value <= grid_min)) {
      found.value = grid_min;
      found.at = Row(grid_, r_at);
    }
    *evaluations += found.evaluations;
    const auto [nt, ns] = GridShape(points_);
    double diag2 = 0;
    for (int a = 0; a < 4; ++a) {
      const int64_t nodes = a == 0 ? nt : ns;
      const double h = (hi_v_[a] - lo_v_[a]) / static_cast<double>(std::max<int64_t>(1, nodes - 1));
      diag2 += h * h;
    }
    return {{"ricci_min", found.value},
            {"ricci_min_at", found.at},
            {"ricci_evaluations", found.evaluations},
            {"evaluations", *evaluations},
            {"lipschitz_estimate", found.max_gradient},
            {"ricci_lower_bound_estimate", grid_min - found.max_gradient * std::sqrt(diag2) / 2},
            {"starts", std::min<int64_t>(o_.refine_worst, grid_.size(0)) + o_.refine_random},
            {"iterations", o_.iterations},
            {"note",
             "ricci_min: the lowest R a projected-gradient descent (float64, central differences) found "
             "from the worst grid points and random points: a value found, never above the grid's, not a "
             "bound. ricci_lower_bound_estimate = grid min - L d/2 with L the largest |grad R| met and d a "
             "grid cell's diagonal: a bound only if L bounds |grad R| everywhere (an estimate)"}};
  }

  Components& c_;
  const DomainSpec& d_;
  std::vector<LossComponent*> constraints_;
  int64_t points_;
  torch::TensorOptions options_;
  const CertifyOptions& o_;
  at::Generator* generator_;
  torch::Tensor grid_, r_;
  std::vector<torch::Tensor> v_;
  std::vector<double> lo_v_, hi_v_;
};

}  // namespace

nlohmann::json Certify(Components& c, int64_t points, const torch::TensorOptions& options_in,
                       const CertifyOptions& o, int64_t chunk) {
  nlohmann::json out = nlohmann::json::object();
  if (points <= 0) return out;
  torch::NoGradGuard no_grad;
  Float64Model float64(*c.model);
  const auto options = options_in.dtype(torch::kFloat64);
  auto generator = at::detail::createCPUGenerator(o.seed);
  for (const auto& d : c.domains) {
    std::vector<LossComponent*> constraints;
    for (auto& l : c.losses) {
      if (l.spec->kind == LossKind::kConstraint && l.spec->domain == d.spec->name) constraints.push_back(&l);
    }
    // A domain of ray_points only has no box to certify.
    if (constraints.empty() || d.spec->strata.empty()) continue;
    out[d.spec->name] =
        DomainCertificate(c, *d.spec, std::move(constraints), points, options, o, &generator).Run(chunk);
  }
  return out;
}

std::vector<std::string> CertificateLines(const nlohmann::json& certificate) {
  std::vector<std::string> lines;
  auto num = [](const nlohmann::json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
  };
  for (const auto& [domain, d] : certificate.items()) {
    std::string line = absl::StrFormat("held-out %s (%d grid points never trained on): min R %.3e",
                                       domain, d["points"].get<int64_t>(), num(d, "ricci_min"));
    if (d.contains("refined")) {
      absl::StrAppendFormat(&line, " (between points %.3e, %d evaluations)", num(d["refined"], "ricci_min"),
                            d["refined"]["evaluations"].get<int64_t>());
    }
    for (const auto& [name, cj] : d["constraints"].items()) {
      absl::StrAppendFormat(&line, "; %s max %.3e mean %.3e", name, num(cj, "max"), num(cj, "mean"));
      if (cj.contains("refined_max")) absl::StrAppendFormat(&line, " (between points %.3e)", num(cj, "refined_max"));
    }
    lines.push_back(line);
  }
  return lines;
}

}  // namespace lumpy
