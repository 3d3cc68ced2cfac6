// The reference-mode ray tracer against the closed-form luminosity distances
// of flat FLRW universes (PHYSICS.md, "Observables"), z from 0.01 to 2.3:
// 1e-6 relative in float64, 1e-4 in float32; and its gradients with respect
// to h0 and omega_m against central finite differences (1e-6 relative).

#include "lumpy/ray_tracer.h"
#include "lumpy/supernovae.h"

#include <gtest/gtest.h>

#include "analytic_metrics.h"
#include "built_in_plugins.h"

namespace lumpy {
namespace {

using testing::MakeBuiltIn;
using testing::MaxAbs;
using testing::TrainableLcdm;

constexpr double kC = 299792.458;

torch::Tensor Redshifts() { return torch::linspace(0.01, 2.3, 47, torch::kFloat64); }

// testing::FlatLcdmLuminosityDistance at every redshift of z.
torch::Tensor LcdmDistance(const torch::Tensor& z, double h0, double om) {
  std::vector<double> out;
  for (int64_t i = 0; i < z.size(0); ++i) {
    out.push_back(testing::FlatLcdmLuminosityDistance(z[i].item<double>(), h0, om));
  }
  return torch::tensor(out, torch::kFloat64);
}

struct Case {
  const char* model;
  double h0, om;
};

class ReferenceRay : public ::testing::TestWithParam<std::tuple<Case, torch::Dtype>> {};

TEST_P(ReferenceRay, MatchesTheClosedFormDistances) {
  const auto [c, dtype] = GetParam();
  auto m = MakeBuiltIn<MetricModel>(
      "flrw", {{"scale_factor", std::string(c.model)}, {"h0", c.h0}, {"omega_m", c.om}});
  auto z = Redshifts();
  torch::Tensor want;
  const double dh = kC / c.h0;  // Hubble distance, Mpc
  if (std::string(c.model) == "eds") {
    want = 2 * dh * (1 + z - torch::sqrt(1 + z));
  } else if (std::string(c.model) == "de_sitter") {
    want = dh * z * (1 + z);
  } else {
    want = LcdmDistance(z, c.h0, c.om);
  }
  torch::NoGradGuard no_grad;
  auto got = TraceReference(*m, z.to(dtype), torch::TensorOptions().dtype(dtype));
  ASSERT_TRUE(got.reached.all().item<bool>()) << got.stop.reason;
  const double tol = dtype == torch::kFloat64 ? 1e-6 : 1e-4;
  EXPECT_LT(MaxAbs(got.luminosity_distance.to(torch::kFloat64) / want - 1), tol)
      << c.model << ": " << got.stop.accepted << " steps, stopped by " << got.stop.reason;
  EXPECT_GT(got.z_max.item<double>(), 2.3);
}

INSTANTIATE_TEST_SUITE_P(
    Flrw, ReferenceRay,
    ::testing::Combine(::testing::Values(Case{"eds", 70, 0.3}, Case{"de_sitter", 70, 0.3},
                                         Case{"lcdm", 70, 0.3}),
                       ::testing::Values(torch::kFloat64, torch::kFloat32)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).model) +
             (std::get<1>(info.param) == torch::kFloat64 ? "_float64" : "_float32");
    });

TEST(ReferenceRayGradient, DerivativesInH0AndOmegaMMatchFiniteDifferences) {
  const auto make = TrainableLcdm;

  auto z = Redshifts();
  auto w = torch::linspace(0.5, 1.5, z.size(0), torch::kFloat64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // Tight tolerances, so that the step-size changes between the finite
  // difference evaluations stay far below the derivative's accuracy.
  RayTracerOptions tight;
  tight.rtol = 1e-12;
  tight.atol = 1e-14;
  auto loss = [&](const std::shared_ptr<MetricModel>& m) {
    auto d = TraceReference(*m, z, f64, tight).luminosity_distance;
    return (w * torch::log(d)).sum();
  };
  auto m = make(70, 0.3);
  auto p = m->physical_parameters();
  auto grads = torch::autograd::grad({loss(m)}, {p[0].value, p[1].value});
  torch::NoGradGuard no_grad;
  const double eh = 1e-2, eo = 1e-4;
  const double fd_h = (loss(make(70 + eh, 0.3)) - loss(make(70 - eh, 0.3))).item<double>() / (2 * eh);
  const double fd_o = (loss(make(70, 0.3 + eo)) - loss(make(70, 0.3 - eo))).item<double>() / (2 * eo);
  EXPECT_NEAR(grads[0].item<double>() / fd_h, 1.0, 1e-6);
  EXPECT_NEAR(grads[1].item<double>() / fd_o, 1.0, 1e-6);
}

// supernova_chi2 over the real Pantheon+ catalogue on flat LCDM: its value is
// the reference's mean of squared pulls computed independently from the
// closed-form distances, and its gradient in h0 and omega_m matches central
// finite differences to 1e-6 relative.
TEST(SupernovaChi2, ValueAndGradientOnFlatLcdm) {
  auto sn = MakeBuiltIn<LossTerm>("supernova_chi2", {{"rtol", 1e-12}, {"atol", 1e-14}});
  ASSERT_TRUE(sn);
  auto path = ResolveDataFile("Pantheon+SH0ES.dat");
  ASSERT_TRUE(path.ok()) << path.status();
  auto cat = LoadSupernovae(*path, {});
  ASSERT_TRUE(cat.ok());
  struct Ctx : StepContext {
    MetricModel* m;
    torch::Tensor pts = torch::zeros({1, 4}, torch::kFloat64);
    const torch::Tensor& points() override { return pts; }
    Geometry& geometry(int) override { throw std::logic_error("unused"); }
    Geometry& observer(int) override { throw std::logic_error("unused"); }
    MetricModel& metric() override { return *m; }
    int64_t step() const override { return 0; }
    torch::TensorOptions options() const override { return torch::kFloat64; }
  };
  auto value = [&](const std::shared_ptr<MetricModel>& m) {
    Ctx ctx;
    ctx.m = m.get();
    return sn->evaluate(ctx).value;
  };
  auto m = TrainableLcdm(70, 0.3);
  auto v = value(m);
  auto want_mu = 5 * torch::log10(LcdmDistance(cat->z, 70, 0.3)) + 25;
  const double want = ((want_mu - cat->mu) / cat->sigma).square().mean().item<double>();
  EXPECT_NEAR(v.item<double>() / want, 1.0, 1e-6);
  auto p = m->physical_parameters();
  auto grads = torch::autograd::grad({v}, {p[0].value, p[1].value});
  torch::NoGradGuard no_grad;
  const double eh = 1e-2, eo = 1e-4;
  const double fd_h =
      (value(TrainableLcdm(70 + eh, 0.3)) - value(TrainableLcdm(70 - eh, 0.3))).item<double>() /
      (2 * eh);
  const double fd_o =
      (value(TrainableLcdm(70, 0.3 + eo)) - value(TrainableLcdm(70, 0.3 - eo))).item<double>() /
      (2 * eo);
  EXPECT_NEAR(grads[0].item<double>() / fd_h, 1.0, 1e-6);
  EXPECT_NEAR(grads[1].item<double>() / fd_o, 1.0, 1e-6);
}

}  // namespace
}  // namespace lumpy
