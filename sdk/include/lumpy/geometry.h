#pragma once
// Curvature and 3+1 kinematics of a metric jet, batched over points.
//
// One Geometry per point set per step: each quantity is computed on first use
// and cached, so every loss term that asks for the Ricci scalar of a domain
// shares one computation. All tensors keep the autograd graph of the jet.
//
// Conventions (docs/physics.md): signature (-,+,+,+), MTW signs, index order as in
// the shapes below. Spatial indices i,j run over x,y,z (1..3).

#include <torch/torch.h>

#include "lumpy/export.h"
#include "lumpy/jet.h"

namespace lumpy {

class LUMPY_API Geometry {
 public:
  explicit Geometry(Jet jet);

  // Raises the jet to a higher order in place: `higher` is the jet of the
  // same points at a higher order. What was computed stays valid, and so
  // does every reference to this object (a StepContext hands out one per
  // domain and step, and extends it when a term asks for more).
  void Extend(Jet higher);

  const Jet& jet() const { return jet_; }
  int order() const { return jet_.order; }
  int64_t batch_size() const { return jet_.g.size(0); }

  // Order 0.
  const torch::Tensor& metric() const { return jet_.g; }  // g_mn [B,4,4]
  const torch::Tensor& inverse_metric();                  // g^mn [B,4,4]
  const torch::Tensor& spatial_metric();                  // gamma_ij [B,3,3]
  const torch::Tensor& det_spatial_metric();              // det gamma [B]
  const torch::Tensor& lapse();  // N = sqrt(-g_00) [B] (zero shift, as the reference)

  // Order 1.
  const torch::Tensor& christoffel();  // Gamma^a_bc [B,4,4,4] as [b,a,b,c]
  // K_ij = -d_t gamma_ij / (2N) [B,3,3] (zero shift).
  const torch::Tensor& extrinsic_curvature();
  const torch::Tensor& extrinsic_curvature_mixed();  // K^i_j [B,3,3] as [i,j]
  const torch::Tensor& hubble_rates();               // H_i = -K^i_i [B,3]
  const torch::Tensor& hubble_mean();                // (H_x+H_y+H_z)/3 [B]
  const torch::Tensor& expansion();                  // theta = -tr K [B]
  const torch::Tensor& shear_squared();              // sigma^2 = 1/2 s^i_j s^j_i [B]

  // Order 2.
  const torch::Tensor& christoffel_derivative();  // d_e Gamma^a_bc [B,4,4,4,4] as [a,b,c,e]
  const torch::Tensor& ricci();                   // R_mn [B,4,4]
  const torch::Tensor& ricci_scalar();            // R [B]
  const torch::Tensor& einstein();                // G_mn [B,4,4]
  const torch::Tensor& einstein_mixed();          // G^m_n [B,4,4] as [m,n]

 private:
  void Require(int order, const char* what) const;
  const torch::Tensor& lowered_christoffel();  // Gamma_dbc [B,4,4,4]

  Jet jet_;
  torch::Tensor ginv_, gamma_, det_gamma_, lapse_;
  torch::Tensor gamma_low_, gamma_up_, dgamma_up_;
  torch::Tensor k_, k_mixed_, hubble_, hubble_mean_, expansion_, shear_sq_;
  torch::Tensor ricci_, ricci_scalar_, einstein_, einstein_mixed_;
};

}  // namespace lumpy
