"""The sky map of `lumpy sky`: per direction bin, the mean of the metric's
distance modulus minus flat LCDM's over the supernovae its rays reached, and
the metric's expansion rate today along the bin's direction, on Mollweide
projections of the sky (RA, DEC; RA increasing to the left, as on the sky).

usage: sky_map.py BINS.csv OUT.png TITLE
"""
import csv
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    bins_csv, out_png, title = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = list(csv.DictReader(open(bins_csv)))
    lon = [-math.radians(((float(r["ra"]) + 180.0) % 360.0) - 180.0) for r in rows]
    lat = [math.radians(float(r["dec"])) for r in rows]
    n = [int(r["n"]) for r in rows]
    diff = [float(r["mean_model_minus_lcdm"]) for r in rows]
    hubble = [float(r["hubble_today"]) for r in rows]
    fig = plt.figure(figsize=(12, 3.9))
    panels = [
        (diff, "RdBu_r", "mean mu(metric) - mu(flat LCDM) [mag]", True),
        (hubble, "viridis", "H today along the direction [km/s/Mpc]", False),
    ]
    for k, (values, cmap, label, symmetric) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1, projection="mollweide")
        finite = [v for v in values if not math.isnan(v)]
        kw = {}
        if finite and symmetric:
            m = max(abs(v) for v in finite) or 1.0
            kw = {"vmin": -m, "vmax": m}
        most = max(n) or 1
        sizes = [15 + 160 * math.sqrt(c / most) for c in n]
        sc = ax.scatter(lon, lat, c=values, s=sizes, cmap=cmap, edgecolors="k", linewidths=0.3, **kw)
        empty = [(x, y) for x, y, v in zip(lon, lat, values) if math.isnan(v)]
        if empty:
            ax.scatter([e[0] for e in empty], [e[1] for e in empty], s=20, marker="x", c="grey")
        ax.set_xticklabels(["150", "120", "90", "60", "30", "0", "330", "300", "270", "240", "210"], fontsize=7)
        ax.grid(True, alpha=0.4)
        ax.set_title(label, fontsize=10)
        fig.colorbar(sc, ax=ax, orientation="horizontal", pad=0.08, fraction=0.05)
    fig.suptitle(f"{title}: direction bins (area ~ supernovae in the bin; x: none reached or none there)",
                 fontsize=11, y=0.99)
    fig.savefig(out_png, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
