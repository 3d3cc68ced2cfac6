// supernova_chi2: the Pantheon+ distance moduli against light rays traced in
// the metric (docs/physics.md, "Light rays and observables"), mu = 5 log10(d_L / Mpc) + 25.
//   mode = "reference": one ray from the observer along +x, d_L = (1+z) x
//                       coordinate radius (the reference implementation)
//   mode = "physical":  rays along the supernovae's sky directions (one per
//                       direction bin, or one each), d_L = (1+z)^2 D_A from
//                       the Jacobi map
//   reduction = "mean":  mean over the supernovae of ((mu - mu_obs)/sigma)^2
//                        (the reference), or r^T C^-1 r / N with a covariance
//   reduction = "total": the chi^2 itself
//   sample_bins = K (physical mode with bins): each step traces K of the
//                       bins drawn at random; the chi^2 of the supernovae on
//                       them, each one weighted B/K (and with a covariance
//                       each pair on two bins B(B-1)/(K(K-1))), and the
//                       shortfall weighted B/K, are unbiased estimates of
//                       the full ones and of their gradients.
//   holdout_fraction = f, holdout_seed = s: a fraction f of the selected
//                       supernovae (a seeded shuffle) never enters the loss;
//                       the Hubble diagram marks them held out, so that the
//                       run's summary and `lumpy sky` judge the metric on
//                       supernovae it never saw.
// Supernovae beyond their ray's reach drop out of the chi^2 and add
// unreached_weight x (farthest missed target z - largest z reached) for each
// ray that falls short (a compass towards reaching them).
//   interpolation = "reference": the reference implementation's read-out and
//   chi^2 (geodesics.py@0bd4b52:192-262, loss.py@0bd4b52:113-117): every
//   supernova stays in the mean; one beyond the largest sampled z gets
//   10 (z - z_max) (in 1000 Mpc) added to its distance instead of dropping
//   out; mu = 5 log10(|d_L| + 1e-6) + 25.

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "lumpy/lumpy.h"
#include "lumpy/ray_tracer.h"
#include "lumpy/sky_rays.h"
#include "lumpy/supernovae.h"
#include "lumpy/status_macros.h"

namespace {

// The read-out keys: how d_L is read off the reference ray.
std::vector<lumpy::ParamSpec> ReadOutSpecs() {
  using lumpy::ParamSpec;
  return {
      ParamSpec::String("interpolation",
                        "exact: each supernova at its crossing on the dense output; reference: the "
                        "reference implementation's read-out (reference mode only: d_L linear in z "
                        "between saved_points samples evenly spaced in the affine parameter, samples "
                        "past the ray's end at the largest z and d_L found, every supernova in the "
                        "chi^2, 10 (z - z_max) x 1000 Mpc added to the distance of one beyond z_max, "
                        "mu = 5 log10(|d_L| + 1e-6) + 25)")
          .Default(std::string("exact"))
          .OneOf({"exact", "reference"}),
      ParamSpec::Int("saved_points", "interpolation = reference: how many samples")
          .Default(int64_t{50})
          .AtLeast(2)
          .AtMost(100000),
  };
}

// The reference implementation's read-out, if interpolation = "reference".
std::optional<lumpy::ReferenceReadOut> ReadOutOf(const lumpy::Params& p) {
  if (p.GetString("interpolation") != "reference") return std::nullopt;
  return lumpy::ReferenceReadOut{p.GetInt("saved_points")};
}

// The catalogue selection, from its parameters.
lumpy::SupernovaOptions SupernovaSelection(const lumpy::Params& p) {
  lumpy::SupernovaOptions o;
  o.columns.z = p.GetString("z_column");
  o.columns.mu = p.GetString("mu_column");
  o.columns.sigma = p.GetString("sigma_column");
  o.z_min = p.GetDouble("z_min");
  o.z_max = p.GetDouble("z_max");
  o.drop_calibrators = p.GetBool("drop_calibrators");
  o.covariance = p.GetString("covariance");
  return o;
}

// The term's rays: physical mode, one per direction bin (each
// supernova read off its nearest bin) or one per supernova (bins = 0); else
// the reference ray. Needs the catalogue's RA/DEC in physical mode.
lumpy::rays::Plan SupernovaRays(const lumpy::Params& p, const lumpy::SupernovaCatalogue& catalogue) {
  lumpy::rays::Plan plan;
  plan.physical = p.GetString("mode") == "physical";
  if (!plan.physical) {
    plan.ray_of = torch::zeros({catalogue.size()}, torch::kLong);
    return plan;
  }
  auto sky = lumpy::SkyDirections(catalogue.ra, catalogue.dec);
  const int64_t bins = p.GetInt("bins");
  if (bins > 0) {
    plan.directions = lumpy::DirectionBins(bins);
    plan.ray_of = lumpy::NearestBin(sky, plan.directions);
  } else {
    plan.directions = sky;
    plan.ray_of = torch::arange(catalogue.size(), torch::kLong);
  }
  return plan;
}

// Which rows of n are held out: the first round(f n) of a Fisher-Yates
// shuffle driven by a 64-bit Mersenne twister seeded with `seed` (written
// out, so that the split is the same with every standard library), sorted.
std::vector<int64_t> HeldOutRows(int64_t n, double fraction, uint64_t seed) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
  order.resize(static_cast<size_t>(std::llround(fraction * static_cast<double>(n))));
  std::sort(order.begin(), order.end());
  return order;
}

class SupernovaChi2 : public lumpy::LossTerm, public lumpy::HubbleDiagramSource {
 public:
  // catalogue: the training rows; all: every selected row, held_out [all] bool.
  SupernovaChi2(const lumpy::Params& p, lumpy::SupernovaCatalogue catalogue, lumpy::SupernovaCatalogue all,
                torch::Tensor held_out)
      : catalogue_(std::move(catalogue)),
        all_(std::move(all)),
        held_out_(std::move(held_out)),
        total_(p.GetString("reduction") == "total"),
        unreached_weight_(p.GetDouble("unreached_weight")),
        tracer_(lumpy::rays::TracerOptions(p)),
        as_posted_(ReadOutOf(p)),
        reference_(as_posted_.has_value()),
        rays_(SupernovaRays(p, catalogue_)),
        all_rays_(SupernovaRays(p, all_)),
        sample_(p.GetInt("sample_bins")) {
    // With a covariance, the sampled estimate needs the precision matrix's
    // entries themselves (each pair of supernovae weighted by whether their
    // bins are the same): C^-1 from its Cholesky factor, once.
    if (sample_ > 0 && catalogue_.covariance_cholesky.defined()) {
      precision_ = torch::cholesky_inverse(catalogue_.covariance_cholesky);
    }
  }

  lumpy::LossValue evaluate(lumpy::StepContext& ctx) override {
    const auto options = ctx.options();
    // Physical rays over several ranks: each traces its share of the bins
    // (with a covariance the pairs on two ranks' bins do not add up: then
    // every rank traces all).
    const lumpy::Shard shard = ctx.shard();
    const bool split = rays_.physical && shard.size > 1 && !precision_.defined() && !catalogue_.covariance_cholesky.defined();
    const auto tracer = lumpy::rays::AtObserver(tracer_, ctx.observer_event());
    if (sample_ > 0 || split) return Sampled(ctx.metric(), tracer, options, split ? shard : lumpy::Shard{});
    auto z = catalogue_.z.to(options);
    auto traced = lumpy::rays::Trace(ctx.metric(), rays_, z, options, tracer, as_posted_);
    telemetry_.Record(traced);
    if (reference_) {  // every supernova, its shortfall inside its distance
      auto mu = 5.0 * torch::log10(traced.luminosity_distance.abs() + 1e-6) + 25.0;
      auto chi2 = catalogue_.Chi2(mu - catalogue_.mu.to(options));
      return {torch::Tensor(), total_ ? chi2 : chi2 / static_cast<double>(catalogue_.size())};
    }
    auto chi2 = catalogue_.Chi2(Residuals(traced, catalogue_.mu.to(options)));
    auto value = total_ ? chi2 : chi2 / static_cast<double>(catalogue_.size());
    auto short_by = lumpy::rays::Shortfall(traced, z, rays_.ray_of);
    if (short_by.defined()) value = value + unreached_weight_ * short_by;
    return {torch::Tensor(), value};  // a dataset term: no per-point values
  }

  // mu - mu_obs where the rays reached the supernova, 0 elsewhere.
  static torch::Tensor Residuals(const lumpy::SkyDistances& traced, const torch::Tensor& mu_obs) {
    const auto& reached = traced.reached;
    auto d = torch::where(reached, traced.luminosity_distance, torch::ones_like(traced.luminosity_distance));
    auto mu = 5.0 * torch::log10(d) + 25.0;
    return torch::where(reached, mu - mu_obs, torch::zeros_like(mu));
  }

  // The term from sample_ of the bins (sky_rays.h, BinSample; all bins if
  // sample_ is 0), or this rank's share of them: every rank draws the same
  // bins and traces those at positions rank, rank + size, ... of the draw,
  // and returns its part of the estimate (partial).
  lumpy::LossValue Sampled(lumpy::MetricModel& metric, const lumpy::RayTracerOptions& tracer,
                           const torch::TensorOptions& options, lumpy::Shard shard) {
    const int64_t bins = rays_.directions.size(0);
    const auto weights = sample_ > 0 ? lumpy::rays::DrawBins(sample_, bins, rays_.ray_of)
                                     : lumpy::rays::SampleOf(torch::arange(bins), bins, rays_.ray_of);
    const auto& drawn = weights.bins;
    auto mine = drawn.index_select(0, torch::arange(shard.rank, drawn.size(0), shard.size, torch::kLong));
    lumpy::LossValue out;
    out.partial = shard.size > 1;
    if (mine.size(0) == 0) {  // more ranks than bins: nothing to trace here
      telemetry_.Record(lumpy::SkyDistances{});
      out.value = torch::zeros({}, options);
      return out;
    }
    auto s = lumpy::rays::SampleOf(mine, bins, rays_.ray_of);
    const lumpy::rays::Plan picked{true, rays_.directions.index_select(0, s.bins), s.ray_of};
    auto z = catalogue_.z.index_select(0, s.targets).to(options);
    auto traced = lumpy::rays::Trace(metric, picked, z, options, tracer);
    telemetry_.Record(traced);
    auto r = Residuals(traced, catalogue_.mu.index_select(0, s.targets).to(options));
    torch::Tensor chi2;
    if (!precision_.defined()) {
      chi2 = weights.same * (r / catalogue_.sigma.index_select(0, s.targets).to(options)).square().sum();
    } else {
      auto p = precision_.index_select(0, s.targets).index_select(1, s.targets).to(options);
      auto same_bin = s.ray_of.unsqueeze(0) == s.ray_of.unsqueeze(1);
      auto w = torch::where(same_bin, torch::full_like(p, weights.same), torch::full_like(p, weights.cross));
      chi2 = torch::dot(r, torch::mv(p * w, r));
    }
    auto value = total_ ? chi2 : chi2 / static_cast<double>(catalogue_.size());
    auto short_by = lumpy::rays::Shortfall(traced, z, s.ray_of);
    if (short_by.defined()) value = value + unreached_weight_ * weights.same * short_by;
    out.value = value;
    return out;
  }

  std::vector<std::pair<std::string, double>> telemetry() const override {
    return telemetry_.values();
  }

  // Every supernova of the selection with the model's distance modulus along
  // the term's own rays, and the model's curve at 200 redshifts log-spaced
  // over the selection (the reference ray; in physical mode along +-x, +-y,
  // +-z). The reference read-out gives every supernova a distance (one
  // beyond the ray's largest sampled z carries its shortfall): the loss's mu
  // for all.
  absl::StatusOr<lumpy::HubbleDiagram> hubble_diagram(lumpy::MetricModel& metric, const torch::TensorOptions& options,
                                                      const lumpy::Event& observer) override {
    torch::NoGradGuard no_grad;
    const auto& cat = all_;
    const auto tracer = lumpy::rays::AtObserver(tracer_, observer);
    auto traced = lumpy::rays::Trace(metric, all_rays_, cat.z.to(options), options, tracer, as_posted_);
    auto dl = traced.luminosity_distance.to(torch::kCPU, torch::kFloat64);
    auto reached = traced.reached.to(torch::kCPU);
    auto modulus = [&](double d) {
      return reference_ ? 5.0 * std::log10(std::abs(d) + 1e-6) + 25.0 : 5.0 * std::log10(d) + 25.0;
    };
    lumpy::HubbleDiagram out;
    int64_t missed = 0;
    for (int64_t i = 0; i < cat.size(); ++i) {
      lumpy::HubbleDiagram::Object o;
      o.name = cat.names[i];
      o.z = cat.z[i].item<double>();
      if (cat.ra.defined()) o.ra = cat.ra[i].item<double>();
      if (cat.dec.defined()) o.dec = cat.dec[i].item<double>();
      o.mu_obs = cat.mu[i].item<double>();
      o.sigma = cat.sigma[i].item<double>();
      o.reached = reached[i].item<bool>();
      o.held_out = held_out_[i].item<bool>();
      if (o.reached || reference_) o.mu_model = modulus(dl[i].item<double>());
      missed += !o.reached;
      out.objects.push_back(o);
    }
    const double z0 = cat.z.min().item<double>(), z1 = cat.z.max().item<double>();
    auto zc = torch::logspace(std::log10(z0), std::log10(z1), 200, 10.0, torch::kFloat64);
    auto add = [&](const std::string& label, const lumpy::SkyDistances& d) {
      auto c = d.luminosity_distance.to(torch::kCPU, torch::kFloat64);
      auto r = d.reached.to(torch::kCPU);
      for (int64_t i = 0; i < zc.size(0); ++i) {
        if (!r[i].item<bool>() && !reference_) continue;
        out.curve.push_back({label, zc[i].item<double>(), modulus(c[i].item<double>())});
      }
    };
    if (all_rays_.physical) {
      const struct { const char* label; double ra, dec; } dirs[] = {
          {"+x", 0, 0}, {"-x", 180, 0}, {"+y", 90, 0}, {"-y", 270, 0}, {"+z", 0, 90}, {"-z", 0, -90}};
      for (const auto& d : dirs) {
        auto dir = lumpy::SkyDirections(torch::tensor({d.ra}, torch::kFloat64), torch::tensor({d.dec}, torch::kFloat64));
        auto ray_of = torch::zeros({zc.size(0)}, torch::kLong);
        add(d.label, lumpy::TraceSky(metric, dir, ray_of, zc.to(options), options, tracer));
      }
    } else {
      add("reference ray (+x)", lumpy::TraceReference(metric, zc.to(options), options, tracer, as_posted_));
    }
    out.note = absl::StrCat(cat.size(), " supernovae (", all_rays_.physical ? "physical" : "reference", " mode",
                            missed ? absl::StrCat(", ", missed, " beyond the rays' reach") : "",
                            cat.size() > catalogue_.size()
                                ? absl::StrCat(", ", cat.size() - catalogue_.size(), " held out of the loss")
                                : "",
                            ")");
    return out;
  }

 private:
  lumpy::SupernovaCatalogue catalogue_;  // the rows the loss sees
  lumpy::SupernovaCatalogue all_;        // every selected row (with the held-out ones)
  torch::Tensor held_out_;               // [all] bool
  bool total_;
  double unreached_weight_;
  lumpy::RayTracerOptions tracer_;
  std::optional<lumpy::ReferenceReadOut> as_posted_;  // interpolation = "reference"
  bool reference_;
  lumpy::rays::Plan rays_, all_rays_;
  int64_t sample_;            // bins traced per step; 0: all
  torch::Tensor precision_;   // C^-1 [N,N] float64 where sampling with a covariance
  lumpy::rays::RayTelemetry telemetry_;
};

// The catalogue, its selection, the held-out split and the loss's reduction.
lumpy::ParamSpecs CatalogueSpecs() {
  using lumpy::ParamSpec;
  return {
      ParamSpec::String("data", "the catalogue: a path, or a name looked up in "
                                "LUMPY_DATA_PATH and ./data")
          .Default(std::string("Pantheon+SH0ES.dat")),
      ParamSpec::String("z_column", "redshift column")
          .Default(std::string("zCMB"))
          .OneOf({"zCMB", "zHD", "zHEL"}),
      ParamSpec::String("mu_column", "distance modulus column").Default(std::string("MU_SH0ES")),
      ParamSpec::String("sigma_column", "distance modulus error column")
          .Default(std::string("MU_SH0ES_ERR_DIAG")),
      ParamSpec::Double("z_min", "keep z_min < z").Default(0.0).AtLeast(0),
      ParamSpec::Double("z_max", "keep z <= z_max").Default(10.0).Greater(0),
      ParamSpec::Bool("drop_calibrators", "drop rows with IS_CALIBRATOR = 1").Default(false),
      ParamSpec::String("covariance", "optional full covariance file (N, then N*N numbers, "
                                      "every row of the catalogue); empty: diagonal errors")
          .Default(std::string("")),
      ParamSpec::String("reduction", "mean: chi^2 / N (the reference); total: chi^2")
          .Default(std::string("mean"))
          .OneOf({"mean", "total"}),
      ParamSpec::Double("holdout_fraction", "hold this fraction of the selected supernovae out of "
                                            "the loss, to judge the metric on them; 0: none")
          .Default(0.0)
          .AtLeast(0)
          .Less(1),
      ParamSpec::Int("holdout_seed", "seed of the held-out split (a shuffle of its own, independent "
                                     "of runtime.seed)")
          .Default(int64_t{1})
          .AtLeast(0),
      ParamSpec::Double("unreached_weight", "penalty per unit of redshift the ray falls short "
                                            "(interpolation = exact; the reference read-out adds "
                                            "its own to the distance)")
          .Default(10.0)
          .AtLeast(0),
  };
}

// The combinations of the rays' and the read-out's keys this term refuses.
absl::Status CheckReadOut(const lumpy::Params& p, const lumpy::SupernovaCatalogue& cat) {
  if (p.GetString("interpolation") == "reference" && p.GetString("mode") != "reference") {
    return lumpy::ParamError(
        "interpolation",
        "\"reference\" is the reference implementation's read-out of its one "
        "ray along +x (d_L = (1+z) x coordinate radius); it needs mode = \"reference\"");
  }
  if (const int64_t k = p.GetInt("sample_bins"); k > 0) {
    if (p.GetString("mode") != "physical" || p.GetInt("bins") == 0) {
      return lumpy::ParamError(
          "sample_bins", "samples direction bins; it needs mode = \"physical\" and bins > 0");
    }
    if (k > p.GetInt("bins")) {
      return lumpy::ParamError("sample_bins", absl::StrCat(k, " is more than the ", p.GetInt("bins"),
                                                           " bins; at most bins (or 0: all)"));
    }
    if (k == 1 && !p.GetString("covariance").empty()) {
      return lumpy::ParamError(
          "sample_bins", "with a covariance at least 2 (the pairs of supernovae on two bins are "
          "estimated from two bins drawn together)");
    }
  }
  if (p.GetString("mode") == "physical" && !cat.ra.defined()) {
    return lumpy::ParamError("mode", absl::StrCat(
        "\"physical\" traces rays along the supernovae's sky directions, but ", cat.file,
        " has no RA and DEC columns"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<lumpy::LossTerm>> Make(const lumpy::Params& p) {
  for (const char* key : {"mu_column", "sigma_column"}) {
    if (p.GetString(key).empty()) return lumpy::ParamError(key, "must name a column of the catalogue");
  }
  auto path = lumpy::ResolveDataFile(p.GetString("data"));
  if (!path.ok()) return lumpy::ParamError("data", std::string(path.status().message()));
  LUMPY_ASSIGN_OR_RETURN(auto cat, lumpy::LoadSupernovae(*path, SupernovaSelection(p)));
  LUMPY_RETURN_IF_ERROR(CheckReadOut(p, cat));
  const double fraction = p.GetDouble("holdout_fraction");
  auto held = torch::zeros({cat.size()}, torch::kBool);
  if (fraction > 0) {
    const auto rows = HeldOutRows(cat.size(), fraction, static_cast<uint64_t>(p.GetInt("holdout_seed")));
    if (rows.empty() || static_cast<int64_t>(rows.size()) == cat.size()) {
      return lumpy::ParamError("holdout_fraction", absl::StrCat(
          fraction, " of the ", cat.size(), " selected supernovae leaves ",
          rows.empty() ? "none held out" : "none to train on", "; choose a fraction between ",
          1.0 / static_cast<double>(cat.size()), " and ", 1.0 - 1.0 / static_cast<double>(cat.size())));
    }
    held.index_put_({torch::tensor(rows, torch::kLong)}, true);
  }
  auto training = fraction > 0 ? cat.Subset((~held).nonzero().squeeze(1)) : cat;
  return std::make_shared<SupernovaChi2>(p, std::move(training), std::move(cat), std::move(held));
}

absl::Status Register(lumpy::Registry& registry) {
  return registry.AddLoss(
      "supernova_chi2",
      "Pantheon+ distance moduli against light rays traced in the metric (reference or physical mode)",
      lumpy::LossKind::kDataset,
      lumpy::Concat({lumpy::rays::RaySpecs(), ReadOutSpecs(), CatalogueSpecs()}), Make);
}

}  // namespace

LUMPY_PLUGIN(Register)
