#include "data/held_out.h"

#include <cmath>
#include <vector>

#include "data/lcdm_fit.h"

namespace lumpy {
namespace {

struct Set {
  std::vector<double> z, mu, sigma, model;
  std::vector<char> reached;
};

double Chi2(const std::vector<double>& r, const std::vector<double>& sigma, const std::vector<char>* only) {
  double sum = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    if (only == nullptr || (*only)[i]) sum += (r[i] / sigma[i]) * (r[i] / sigma[i]);
  }
  return sum;
}

torch::Tensor Tensor(const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64); }

}  // namespace

nlohmann::json JudgeOnHeldOut(const HubbleDiagram& d) {
  Set sets[2];  // training, held out
  for (const auto& o : d.objects) {
    Set& s = sets[o.held_out ? 1 : 0];
    s.z.push_back(o.z);
    s.mu.push_back(o.mu_obs);
    s.sigma.push_back(o.sigma);
    s.model.push_back(o.mu_model);
    s.reached.push_back(o.reached && std::isfinite(o.mu_model));
  }
  if (sets[1].z.empty() || sets[0].z.empty()) return nlohmann::json::object();
  const auto sigma0 = Tensor(sets[0].sigma);
  const LcdmFit lcdm = FitFlatLcdm(Tensor(sets[0].z), Tensor(sets[0].mu), [&](const torch::Tensor& r) {
    return (r / sigma0).square().sum().item<double>();
  });
  nlohmann::json out;
  const char* names[2] = {"training", "held_out"};
  nlohmann::json lcdm_json = {{"h0", lcdm.h0}, {"omega_m", lcdm.omega_m},
                              {"note", "flat LCDM fitted on the training set (closed form, diagonal errors)"}};
  double metric_held = 0, lcdm_held_reached = 0;
  for (int k = 0; k < 2; ++k) {
    const Set& s = sets[k];
    const auto n = static_cast<int64_t>(s.z.size());
    std::vector<double> r_model(n), r_lcdm(n);
    auto mu_lcdm = FlatLcdmDistanceModulus(Tensor(s.z), lcdm.h0, lcdm.omega_m);
    int64_t reached = 0;
    for (int64_t i = 0; i < n; ++i) {
      r_model[i] = s.reached[i] ? s.model[i] - s.mu[i] : 0.0;
      r_lcdm[i] = mu_lcdm[i].item<double>() - s.mu[i];
      reached += s.reached[i];
    }
    const double chi2 = Chi2(r_model, s.sigma, &s.reached);
    const double lcdm_all = Chi2(r_lcdm, s.sigma, nullptr), lcdm_reached = Chi2(r_lcdm, s.sigma, &s.reached);
    out[names[k]] = {{"n", n},
                     {"reached", reached},
                     {"chi2", chi2},
                     {"chi2_per_reached", reached ? chi2 / static_cast<double>(reached) : NAN}};
    lcdm_json[names[k]] = {{"chi2", lcdm_all},
                           {"chi2_per_n", lcdm_all / static_cast<double>(n)},
                           {"chi2_on_reached", lcdm_reached}};
    if (k == 1) {
      metric_held = chi2;
      lcdm_held_reached = lcdm_reached;
    }
  }
  out["lcdm"] = lcdm_json;
  out["delta_chi2_held_out"] = metric_held - lcdm_held_reached;
  out["note"] =
      "chi^2 with diagonal errors over the supernovae the metric's rays reached; lcdm.*.chi2_on_reached "
      "over the same ones; delta_chi2_held_out = metric - LCDM on the held-out ones reached";
  return out;
}

}  // namespace lumpy
