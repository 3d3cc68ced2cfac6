#include "lumpy/geometry.h"

#include <stdexcept>
#include <string>

#include "physics/ricci_kernels.h"

namespace lumpy {

using torch::indexing::Slice;

namespace {

// Gamma_dbc = 1/2 (d_b g_dc + d_c g_db - d_d g_bc), with dg[i,j,k] = d_k g_ij.
torch::Tensor LoweredChristoffel(const torch::Tensor& dg) {
  return 0.5 * (dg.permute({0, 1, 3, 2}) + dg - dg.permute({0, 3, 1, 2}));
}

}  // namespace

Geometry::Geometry(Jet jet) : jet_(std::move(jet)) {
  TORCH_CHECK(jet_.g.defined() && jet_.g.dim() == 3 && jet_.g.size(1) == 4 &&
                  jet_.g.size(2) == 4,
              "Geometry: the jet's metric must be [B,4,4]");
}

void Geometry::Extend(Jet higher) {
  TORCH_CHECK(higher.order > jet_.order, "Geometry::Extend: order ", higher.order, " is not above ", jet_.order);
  TORCH_CHECK(higher.g.defined() && higher.g.sizes() == jet_.g.sizes(),
              "Geometry::Extend: the higher-order jet must be of the same points");
  jet_ = std::move(higher);
}

void Geometry::Require(int order, const char* what) const {
  if (jet_.order < order) {
    throw std::logic_error(std::string("Geometry: ") + what + " needs a jet of order " +
                           std::to_string(order) + ", this one has order " +
                           std::to_string(jet_.order));
  }
}

const torch::Tensor& Geometry::inverse_metric() {
  if (!ginv_.defined()) ginv_ = torch::inverse(jet_.g);
  return ginv_;
}

const torch::Tensor& Geometry::spatial_metric() {
  if (!gamma_.defined()) gamma_ = jet_.g.index({Slice(), Slice(1, 4), Slice(1, 4)});
  return gamma_;
}

const torch::Tensor& Geometry::det_spatial_metric() {
  if (!det_gamma_.defined()) det_gamma_ = torch::det(spatial_metric());
  return det_gamma_;
}

const torch::Tensor& Geometry::lapse() {
  if (!lapse_.defined()) lapse_ = torch::sqrt(-jet_.g.select(1, 0).select(1, 0));
  return lapse_;
}

const torch::Tensor& Geometry::lowered_christoffel() {
  Require(1, "the Christoffel symbols");
  if (!gamma_low_.defined()) {
    gamma_low_ = LoweredChristoffel(jet_.dg);
  }
  return gamma_low_;
}

const torch::Tensor& Geometry::christoffel() {
  if (!gamma_up_.defined()) {
    gamma_up_ = torch::einsum("zad,zdbc->zabc", {inverse_metric(), lowered_christoffel()});
  }
  return gamma_up_;
}

const torch::Tensor& Geometry::christoffel_derivative() {
  Require(2, "the derivative of the Christoffel symbols");
  if (!dgamma_up_.defined()) {
    const auto& ginv = inverse_metric();
    const auto& d2g = jet_.d2g;
    // d_e g^ad = -g^am (d_e g_mq) g^qd
    auto dginv = -torch::einsum("zam,zmqe,zqd->zade", {ginv, jet_.dg, ginv});
    // d_e Gamma_dbc = 1/2 (d_e d_b g_dc + d_e d_c g_db - d_e d_d g_bc)
    auto dlow = 0.5 * (d2g.permute({0, 1, 3, 2, 4}) + d2g - d2g.permute({0, 3, 1, 2, 4}));
    dgamma_up_ = torch::einsum("zade,zdbc->zabce", {dginv, lowered_christoffel()}) +
                 torch::einsum("zad,zdbce->zabce", {ginv, dlow});
  }
  return dgamma_up_;
}

const torch::Tensor& Geometry::ricci() {
  Require(2, "the Ricci tensor");
  if (!ricci_.defined()) {
    ricci_ = RicciFusedApplies(jet_.g) ? RicciFused(inverse_metric(), jet_.dg, jet_.d2g)
                                       : RicciTensorOps(inverse_metric(), jet_.dg, jet_.d2g);
  }
  return ricci_;
}

torch::Tensor RicciTensorOps(const torch::Tensor& ginv, const torch::Tensor& dg,
                             const torch::Tensor& d2g) {
  //   d_r G^r_mn = (d_r g^rd) G_dmn + 1/2 g^rd (d_r d_m g_dn + d_r d_n g_dm - d_r d_d g_mn)
  //   d_n G^r_mr = 1/2 (d_n g^rs d_m g_rs + g^rs d_n d_m g_rs)
  auto low = LoweredChristoffel(dg);
  auto c = torch::einsum("zad,zdbc->zabc", {ginv, low});
  auto dginv = -torch::einsum("zam,zmqe,zqd->zade", {ginv, dg, ginv});  // d_e g^ad
  auto div_ginv = torch::einsum("zrdr->zd", {dginv});                   // d_r g^rd
  auto s = torch::einsum("zli,zijkl->zjk", {ginv, d2g});  // S_jk = g^li d_k d_l g_ij
  auto box = torch::einsum("zkl,zijkl->zij", {ginv, d2g});  // g^kl d_k d_l g_ij
  auto d_gamma_r_mn =
      torch::einsum("zd,zdmn->zmn", {div_ginv, low}) + 0.5 * (s + s.transpose(1, 2) - box);
  auto d_gamma_r_mr = 0.5 * (torch::einsum("zrsn,zrsm->zmn", {dginv, dg}) +
                             torch::einsum("zrs,zrsmn->zmn", {ginv, d2g}));
  auto trace = torch::einsum("zsrs->zr", {c});  // G^s_rs
  return d_gamma_r_mn - d_gamma_r_mr + torch::einsum("zr,zrmn->zmn", {trace, c}) -
         torch::einsum("zsmr,zrns->zmn", {c, c});
}

const torch::Tensor& Geometry::ricci_scalar() {
  if (!ricci_scalar_.defined()) {
    ricci_scalar_ = torch::einsum("zmv,zmv->z", {inverse_metric(), ricci()});
  }
  return ricci_scalar_;
}

const torch::Tensor& Geometry::einstein() {
  if (!einstein_.defined()) {
    einstein_ = ricci() - 0.5 * ricci_scalar().view({-1, 1, 1}) * jet_.g;
  }
  return einstein_;
}

const torch::Tensor& Geometry::einstein_mixed() {
  if (!einstein_mixed_.defined()) {
    einstein_mixed_ = torch::einsum("zma,zav->zmv", {inverse_metric(), einstein()});
  }
  return einstein_mixed_;
}

const torch::Tensor& Geometry::extrinsic_curvature() {
  Require(1, "the extrinsic curvature");
  if (!k_.defined()) {
    auto dt_gamma = jet_.dg.index({Slice(), Slice(1, 4), Slice(1, 4), 0});
    k_ = -dt_gamma / (2.0 * lapse().view({-1, 1, 1}));
  }
  return k_;
}

const torch::Tensor& Geometry::extrinsic_curvature_mixed() {
  if (!k_mixed_.defined()) {
    k_mixed_ = torch::matmul(torch::inverse(spatial_metric()), extrinsic_curvature());
  }
  return k_mixed_;
}

const torch::Tensor& Geometry::hubble_rates() {
  if (!hubble_.defined()) {
    hubble_ = -torch::diagonal(extrinsic_curvature_mixed(), 0, 1, 2);
  }
  return hubble_;
}

const torch::Tensor& Geometry::hubble_mean() {
  if (!hubble_mean_.defined()) hubble_mean_ = hubble_rates().mean(1);
  return hubble_mean_;
}

const torch::Tensor& Geometry::expansion() {
  if (!expansion_.defined()) expansion_ = hubble_rates().sum(1);
  return expansion_;
}

const torch::Tensor& Geometry::shear_squared() {
  if (!shear_sq_.defined()) {
    const auto& km = extrinsic_curvature_mixed();
    auto trace = torch::diagonal(km, 0, 1, 2).sum(1).view({-1, 1, 1});
    auto eye = torch::eye(3, km.options()).unsqueeze(0);
    auto sigma = km - trace / 3.0 * eye;
    shear_sq_ = 0.5 * torch::einsum("zij,zji->z", {sigma, sigma});
  }
  return shear_sq_;
}

}  // namespace lumpy
