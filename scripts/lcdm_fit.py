#!/usr/bin/env python3
"""An independent flat-LCDM fit of Pantheon+ (numpy only, no lumpy code), to
check experiments/baselines/lcdm.toml.

Selection as the baseline: zHD, z > 0.01, IS_CALIBRATOR = 0, MU_SH0ES with
MU_SH0ES_ERR_DIAG, total chi^2. Model: mu = 5 log10(d_L / Mpc) + 25,
d_L = (1 + z) (c / H0) int_0^z dz' / sqrt(Om (1+z')^3 + 1 - Om).

The integral is cumulative Simpson on a uniform grid of 2^17 intervals up to
the largest redshift, interpolated (cubic Hermite with the exact integrand
as slope) at each supernova: relative error far below 1e-10. For fixed Om the
best H0 is analytic (mu depends on H0 only through -5 log10 H0), so the fit
is a one-dimensional minimisation over Om (golden section to 1e-12).

usage: lcdm_fit.py [Pantheon+SH0ES.dat]     (default: $LUMPY_DATA_PATH or ./data)
"""
import math
import os
import sys

import numpy as np

C_KM_S = 299792.458


def load(path):
    with open(path) as f:
        header = f.readline().split()
        rows = [line.split() for line in f if line.strip()]
    col = {name: i for i, name in enumerate(header)}
    z = np.array([float(r[col["zHD"]]) for r in rows])
    mu = np.array([float(r[col["MU_SH0ES"]]) for r in rows])
    sigma = np.array([float(r[col["MU_SH0ES_ERR_DIAG"]]) for r in rows])
    calibrator = np.array([int(r[col["IS_CALIBRATOR"]]) for r in rows])
    keep = (z > 0.01) & (calibrator == 0)
    return z[keep], mu[keep], sigma[keep]


def comoving(z, om, n=1 << 17):
    """int_0^z dz'/E(z') for every z (dimensionless)."""
    inv_e = lambda x: 1.0 / np.sqrt(om * (1.0 + x) ** 3 + 1.0 - om)
    grid = np.linspace(0.0, z.max(), n + 1)
    f = inv_e(grid)
    h = grid[1] - grid[0]
    # Cumulative Simpson at even nodes, trapezoid-corrected odd nodes via Hermite below.
    cum = np.zeros_like(grid)
    cum[2::2] = np.cumsum(h / 3.0 * (f[0:-2:2] + 4 * f[1:-1:2] + f[2::2]))
    # odd nodes: Simpson over [x_{2k}, x_{2k+1}] with the midpoint value
    mid = inv_e(grid[0:-1:2] + h / 2)
    cum[1::2] = cum[0:-1:2] + h / 6.0 * (f[0:-1:2] + 4 * mid + f[1::2])
    # cubic Hermite interpolation at z
    i = np.minimum((z / h).astype(int), n - 1)
    s = (z - grid[i]) / h
    y0, y1, d0, d1 = cum[i], cum[i + 1], f[i] * h, f[i + 1] * h
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * y0 + h10 * d0 + h01 * y1 + h11 * d1


def best_h0(z, mu, w, om):
    """H0 minimising chi^2 at fixed Om, and that chi^2."""
    a = 5.0 * np.log10((1.0 + z) * C_KM_S * comoving(z, om)) + 25.0  # mu + 5 log10 H0
    log_h0 = np.sum(w * (a - mu)) / np.sum(w) / 5.0
    chi2 = float(np.sum(w * (a - 5.0 * log_h0 - mu) ** 2))
    return 10.0**log_h0, chi2


def main():
    if len(sys.argv) > 1:
        path = sys.argv[1]
    else:
        dirs = os.environ.get("LUMPY_DATA_PATH", "").split(":") + ["data"]
        path = next((os.path.join(d, "Pantheon+SH0ES.dat") for d in dirs if d and
                     os.path.exists(os.path.join(d, "Pantheon+SH0ES.dat"))), None)
        if path is None:
            sys.exit("Pantheon+SH0ES.dat not found in LUMPY_DATA_PATH or ./data (scripts/download_pantheon.sh)")
    z, mu, sigma = load(path)
    w = 1.0 / sigma**2
    lo, hi = 0.05, 0.95
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = best_h0(z, mu, w, a)[1], best_h0(z, mu, w, b)[1]
    while hi - lo > 1e-12:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = best_h0(z, mu, w, a)[1]
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = best_h0(z, mu, w, b)[1]
    om = (lo + hi) / 2
    h0, chi2 = best_h0(z, mu, w, om)
    # 1-sigma (delta chi^2 = 1) of Om, profiled over H0, by bisection on each side.
    def edge(direction):
        step, inside = 0.0, 0.0
        outside = 0.2
        while outside - inside > 1e-7:
            mid = (inside + outside) / 2
            if best_h0(z, mu, w, om + direction * mid)[1] - chi2 < 1.0:
                inside = mid
            else:
                outside = mid
        return inside
    print(f"supernovae: {len(z)} (zHD > 0.01, calibrators dropped)")
    print(f"omega_m = {om:.10f}  (+{edge(+1):.4f} / -{edge(-1):.4f}, delta chi^2 = 1)")
    print(f"h0      = {h0:.10f} km/s/Mpc")
    print(f"chi2    = {chi2:.10f}  (chi2/N = {chi2 / len(z):.6f})")


if __name__ == "__main__":
    main()
