#include "train/certify.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "train/point_set_context.h"

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

// Puts the model in float64 for the certificate and back in its own dtype.
class Float64Model {
 public:
  explicit Float64Model(MetricModel& model) : model_(model) {
    auto params = model.parameters();
    if (!params.empty()) dtype_ = params.front().scalar_type();
    if (dtype_ != torch::kFloat64) model_.to(torch::kFloat64);
  }
  ~Float64Model() {
    if (dtype_ != torch::kFloat64) model_.to(dtype_);
  }

 private:
  MetricModel& model_;
  torch::ScalarType dtype_ = torch::kFloat64;
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

DescentResult Descend(const Objective& f, const torch::Tensor& starts, const torch::Tensor& lo_in,
                      const torch::Tensor& hi_in, int64_t iterations) {
  torch::NoGradGuard no_grad;
  DescentResult out;
  const int64_t s = starts.size(0);
  if (s == 0) return out;
  const auto options = starts.options().dtype(torch::kFloat64);
  auto lo = lo_in.to(options).view({1, 4}), hi = hi_in.to(options).view({1, 4});
  auto span = hi - lo;
  // Unit coordinates u = (x - lo) / span in [0, 1]^4.
  auto to_x = [&](const torch::Tensor& u) { return lo + u * span; };
  auto u = ((starts.to(options) - lo) / span).clamp(0, 1);
  auto fu = Finite(f(to_x(u))).to(torch::kCPU);
  out.evaluations += s;
  constexpr double kH = 1e-5;  // central differences in u
  auto offsets = torch::zeros({8, 4}, options);
  for (int i = 0; i < 4; ++i) {
    offsets[2 * i][i] = kH;
    offsets[2 * i + 1][i] = -kH;
  }
  std::vector<double> alpha(s, -1.0);
  std::vector<char> active(s, 1), need_grad(s, 1);
  auto grad = torch::zeros({s, 4}, torch::TensorOptions().dtype(torch::kFloat64));
  for (int64_t it = 0; it < iterations; ++it) {
    std::vector<int64_t> g_rows, t_rows;
    for (int64_t j = 0; j < s; ++j) {
      if (active[j] && need_grad[j]) g_rows.push_back(j);
    }
    if (!g_rows.empty()) {
      auto idx = torch::tensor(g_rows, torch::kLong).to(options.device());
      auto base = u.index_select(0, idx);                               // [G,4]
      auto probe = (base.unsqueeze(1) + offsets.unsqueeze(0)).view({-1, 4});  // [G*8,4]
      auto fp = f(to_x(probe)).view({-1, 8}).to(torch::kCPU);
      out.evaluations += probe.size(0);
      auto g = (fp.index({torch::indexing::Slice(), torch::indexing::Slice(0, 8, 2)}) -
                fp.index({torch::indexing::Slice(), torch::indexing::Slice(1, 8, 2)})) /
               (2 * kH);  // [G,4], d f / d u
      auto span_cpu = span.to(torch::kCPU).view({1, 4});
      auto gx_norm = (g / span_cpu).norm(2, 1);
      for (size_t k = 0; k < g_rows.size(); ++k) {
        const int64_t j = g_rows[k];
        const double gn = gx_norm[k].item<double>();
        if (!std::isfinite(gn)) {
          active[j] = 0;
          continue;
        }
        out.max_gradient = std::max(out.max_gradient, gn);
        grad[j].copy_(g[k]);
        need_grad[j] = 0;
        const double gu = g[k].norm().item<double>();
        if (alpha[j] < 0) alpha[j] = gu > 0 ? 0.01 / gu : 0.0;  // a first step of 1% of the box
      }
    }
    for (int64_t j = 0; j < s; ++j) {
      if (!active[j]) continue;
      const double step = alpha[j] * grad[j].norm().item<double>();
      if (!(step > 1e-12)) {
        active[j] = 0;  // converged (or a flat start: nothing to follow)
        continue;
      }
      t_rows.push_back(j);
    }
    if (t_rows.empty()) break;
    auto idx = torch::tensor(t_rows, torch::kLong);
    auto a = torch::tensor(std::vector<double>(t_rows.size()), torch::kFloat64);
    for (size_t k = 0; k < t_rows.size(); ++k) a[k] = alpha[t_rows[k]];
    auto base = u.index_select(0, idx.to(options.device()));
    auto g = grad.index_select(0, idx);
    auto trial = (base - (a.view({-1, 1}) * g).to(options)).clamp(0, 1);
    auto ft = Finite(f(to_x(trial))).to(torch::kCPU);
    out.evaluations += trial.size(0);
    auto moved = (base - trial).to(torch::kCPU);
    for (size_t k = 0; k < t_rows.size(); ++k) {
      const int64_t j = t_rows[k];
      const double f0 = fu[j].item<double>(), f1 = ft[k].item<double>();
      const double decrease = (g[k] * moved[k]).sum().item<double>();  // >= 0 along the projected step
      if (f1 <= f0 - 1e-4 * decrease && f1 < f0) {
        u[j].copy_(trial[k]);
        fu[j] = f1;
        alpha[j] *= 2.0;
        need_grad[j] = 1;
      } else {
        alpha[j] /= 4.0;
      }
    }
  }
  const int64_t best = fu.argmin().item<int64_t>();
  out.value = fu[best].item<double>();
  out.at = Row(to_x(u), best);
  return out;
}

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
    if (constraints.empty()) continue;
    const auto grid = HeldOutGrid(*d.spec, points, options);
    const int64_t n = grid.size(0);
    // R and every constraint's violation at the grid (CPU float64).
    auto ricci = [&](const torch::Tensor& x) {
      PointSetContext ctx(*c.model, x);
      return ctx.geometry(2).ricci_scalar();
    };
    auto violation = [&](size_t k, const torch::Tensor& x) {
      PointSetContext ctx(*c.model, x);
      return constraints[k]->term->evaluate(ctx).per_point.detach();
    };
    std::vector<torch::Tensor> r_parts;
    std::vector<std::vector<torch::Tensor>> v_parts(constraints.size());
    for (int64_t start = 0; start < n; start += chunk) {
      auto x = grid.narrow(0, start, std::min(chunk, n - start));
      r_parts.push_back(ricci(x).to(torch::kCPU, torch::kFloat64));
      for (size_t k = 0; k < constraints.size(); ++k) {
        v_parts[k].push_back(violation(k, x).to(torch::kCPU, torch::kFloat64));
      }
    }
    const auto r = torch::cat(r_parts);
    int64_t non_finite = (~torch::isfinite(r)).sum().item<int64_t>();
    const auto r_clean = r.nan_to_num(INFINITY);
    const int64_t r_at = r_clean.argmin().item<int64_t>();
    nlohmann::json dj;
    dj["points"] = n;
    dj["ricci_min"] = r_clean[r_at].item<double>();
    dj["ricci_min_at"] = Row(grid, r_at);

    // The refinement: descents from the worst grid points and random points.
    const auto [lo_v, hi_v] = Box(*d.spec);
    auto lo = torch::tensor(lo_v, options), hi = torch::tensor(hi_v, options);
    auto random_starts = [&] {
      auto u = torch::rand({o.refine_random, 4}, generator, torch::TensorOptions().dtype(torch::kFloat64));
      return lo + u.to(options) * (hi - lo);
    };
    auto starts_from = [&](const torch::Tensor& score) {  // the lowest scores' grid points
      const int64_t k = std::min<int64_t>(o.refine_worst, n);
      auto worst = std::get<1>(score.topk(k, 0, /*largest=*/false));
      return torch::cat({grid.index_select(0, worst.to(grid.device())), random_starts()});
    };
    const bool refine = o.refine_worst + o.refine_random > 0;
    nlohmann::json refined;
    int64_t evaluations = 0;
    if (refine) {
      auto found = Descend([&](const torch::Tensor& x) { return ricci(x); }, starts_from(r_clean), lo, hi,
                           o.iterations);
      // Never above the grid: the grid minimum is a start of its own.
      const double grid_min = r_clean[r_at].item<double>();
      if (!(found.value <= grid_min)) {
        found.value = grid_min;
        found.at = Row(grid, r_at);
      }
      evaluations += found.evaluations;
      const auto [nt, ns] = GridShape(points);
      double diag2 = 0;
      for (int a = 0; a < 4; ++a) {
        const int64_t nodes = a == 0 ? nt : ns;
        const double h = nodes > 1 ? (hi_v[a] - lo_v[a]) / static_cast<double>(nodes - 1) : hi_v[a] - lo_v[a];
        diag2 += h * h;
      }
      refined["ricci_min"] = found.value;
      refined["ricci_min_at"] = found.at;
      refined["ricci_evaluations"] = found.evaluations;
      refined["lipschitz_estimate"] = found.max_gradient;
      refined["ricci_lower_bound_estimate"] = grid_min - found.max_gradient * std::sqrt(diag2) / 2;
      refined["starts"] = std::min<int64_t>(o.refine_worst, n) + o.refine_random;
      refined["iterations"] = o.iterations;
      refined["note"] =
          "ricci_min: the lowest R a projected-gradient descent (float64, central differences) found "
          "from the worst grid points and random points: a value found, never above the grid's, not a "
          "bound. ricci_lower_bound_estimate = grid min - L d/2 with L the largest |grad R| met and d a "
          "grid cell's diagonal: a bound only if L bounds |grad R| everywhere (an estimate)";
    }
    dj["non_finite"] = non_finite;
    for (size_t k = 0; k < constraints.size(); ++k) {
      const auto v = torch::cat(v_parts[k]);
      dj["non_finite"] = dj["non_finite"].get<int64_t>() + (~torch::isfinite(v)).sum().item<int64_t>();
      const auto v_clean = v.nan_to_num(INFINITY, INFINITY, -INFINITY);
      const int64_t at = v_clean.argmax().item<int64_t>();
      nlohmann::json cj;
      cj["max"] = v_clean[at].item<double>();
      cj["mean"] = v_clean.sum().item<double>() / static_cast<double>(n);
      cj["max_at"] = Row(grid, at);
      if (refine) {
        auto found = Descend([&](const torch::Tensor& x) { return -violation(k, x); }, starts_from(-v_clean), lo,
                             hi, o.iterations);
        const double worst = -found.value;
        cj["refined_max"] = std::max(worst, cj["max"].get<double>());
        cj["refined_max_at"] = worst >= cj["max"].get<double>() ? found.at : cj["max_at"].get<std::vector<double>>();
        cj["refined_evaluations"] = found.evaluations;
        evaluations += found.evaluations;
      }
      dj["constraints"][constraints[k]->spec->name] = cj;
    }
    if (refine) {
      refined["evaluations"] = evaluations;
      dj["refined"] = refined;
    }
    out[d.spec->name] = dj;
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
