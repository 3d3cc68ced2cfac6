#include "cli/distances.h"

#include <cmath>
#include <iostream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "lumpy/ray_tracer.h"

namespace lumpy {

namespace {

// The ray's sky direction {RA, DEC} (reference mode: {0, 0}, unused), with
// every redshift checked; InvalidArgument naming the option otherwise.
absl::StatusOr<std::vector<double>> CheckedDirection(const DistancesOptions& o, const std::string& mode) {
  if (mode == "reference" && !o.direction.empty()) {
    return absl::InvalidArgumentError(
        "--direction: the reference ray always runs along +x from the observer; "
        "sky directions need --mode physical (the default with --direction)");
  }
  std::vector<double> radec = o.direction.empty() ? std::vector<double>{0.0, 0.0} : o.direction;
  if (radec.size() != 2 || !std::isfinite(radec[0]) || !std::isfinite(radec[1]) || std::abs(radec[1]) > 90) {
    return absl::InvalidArgumentError(
        "--direction: expected RA,DEC in degrees with |DEC| <= 90, e.g. --direction 150.1,2.2");
  }
  for (double v : o.z) {
    if (!(v > 0) || !std::isfinite(v)) {
      std::ostringstream message;  // the number as the stream writes it
      message << "--z: every redshift must be finite and > 0, got " << v;
      return absl::InvalidArgumentError(message.str());
    }
  }
  return radec;
}

// The distances at z along the reference ray, or along RA,DEC (physical).
SkyDistances Trace(LoadedExperiment& loaded, const std::string& mode, const std::vector<double>& radec,
                   const std::vector<double>& z) {
  auto zt = torch::tensor(z, torch::kFloat64).to(loaded.options);
  RayTracerOptions tracer;
  tracer.hubble_distance = true;
  tracer.observer = loaded.c.observer;
  MetricModel& model = *loaded.c.model;
  if (mode != "physical") return TraceReference(model, zt, loaded.options, tracer);
  auto dir = SkyDirections(torch::tensor({radec[0]}), torch::tensor({radec[1]}));
  auto ray_of = torch::zeros({static_cast<int64_t>(z.size())}, torch::kLong);
  return TraceSky(model, dir, ray_of, zt, loaded.options, tracer);
}

// The CSV on standard output, one row per redshift (empty where the ray did
// not reach it); returns the redshifts not reached.
std::vector<double> PrintDistances(const std::vector<double>& z, const SkyDistances& traced) {
  auto d_l = traced.luminosity_distance.to(torch::kFloat64).cpu();
  auto d_a = traced.angular_distance.to(torch::kFloat64).cpu();
  auto d_h = traced.hubble_distance.to(torch::kFloat64).cpu();
  auto reached = traced.reached.cpu();
  std::cout << "z,d_L_mpc,d_A_mpc,d_H_mpc,mu\n";
  std::vector<double> missed;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!reached[i].item<bool>()) {
      std::cout << absl::StrFormat("%.17g,,,,\n", z[i]);
      missed.push_back(z[i]);
      continue;
    }
    const double dl = d_l[i].item<double>();
    std::cout << absl::StrFormat("%.17g,%.17g,%.17g,%.17g,%.17g\n", z[i], dl, d_a[i].item<double>(),
                                 d_h[i].item<double>(), 5 * std::log10(dl) + 25);
  }
  std::cout.flush();
  return missed;
}

}  // namespace

int RunDistances(const DistancesOptions& o) {
  const std::string mode = !o.mode.empty() ? o.mode : o.direction.empty() ? "reference" : "physical";
  const absl::StatusOr<std::vector<double>> radec = CheckedDirection(o, mode);
  if (!radec.ok()) return ExitStatus(radec.status());
  LoadedExperiment loaded;
  if (int rc = ExitStatus(LoadModel(o.experiment, o.sets, o.checkpoint, &loaded))) return rc;
  torch::NoGradGuard no_grad;
  const SkyDistances traced = Trace(loaded, mode, *radec, o.z);
  std::cerr << (mode == "physical" ? "physical ray: " : "reference ray: ") << traced.stop.accepted
            << " steps (" << traced.stop.rejected << " rejected), stopped by "
            << traced.stop.Summary() << std::endl;
  const std::vector<double> missed = PrintDistances(o.z, traced);
  if (!missed.empty()) {
    std::cerr << "warning: the ray stopped (" << traced.stop.Summary() << ") at z = "
              << traced.z_max.max().item<double>() << " before reaching z = "
              << absl::StrJoin(missed, ", ") << "; those rows are empty" << std::endl;
  }
  return kExitOk;
}

}  // namespace lumpy
