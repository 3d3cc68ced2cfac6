#!/usr/bin/env python3
"""The figure of `lumpy ablate`: ablation.csv -> ablation.png.

Left: every loss term's final value per run (log scale). Right: the held-out
checks per run: the largest constraint violation (>= 0) and the minimum
Ricci scalar (negative where the WEC fails between training points), on a
symmetric-log axis."""
import csv
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def number(text):
    try:
        v = float(text)
        return v if math.isfinite(v) else None
    except ValueError:
        return None


def main(csv_path, png_path):
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    header = list(rows[0].keys())
    fixed = {"variant", "seed", "status", "steps", "wall_time_s", "loss", "held_out_max_violation",
             "held_out_worst_constraint", "held_out_ricci_min", "omega_m", "H_mean_today",
             "shear_sq_today", "error"}
    # Loss terms are the columns without a dot; "term.name" columns are the
    # handlers' final state (in the table, not drawn here).
    terms = [h for h in header if h not in fixed and "." not in h]
    def short(variant):
        return "\n".join(part.split("=", 1)[-1] for part in variant.split(" "))

    labels = [f"{short(r['variant'])}\nseed {r['seed']}" + ("" if r["status"] == "completed" else f"\n({r['status']})")
              for r in rows]
    # Long variant names are set at an angle so that neighbours never overlap.
    rotation = 0 if max(len(line) for label in labels for line in label.split("\n")) * len(rows) < 90 else 35
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(10, 2.2 * len(rows)), 5.5 + (1.5 if rotation else 0)))
    width = 0.8 / max(1, len(terms))
    for k, t in enumerate(terms):
        values = [number(r[t]) for r in rows]
        xs = [i + k * width for i, v in enumerate(values) if v is not None and v > 0]
        ys = [v for v in values if v is not None and v > 0]
        ax1.bar(xs, ys, width, label=t, color=f"C{k}")
    ax1.set_yscale("log")
    ax1.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
    ax1.set_xticklabels(labels, fontsize=8, rotation=rotation, ha="right" if rotation else "center")
    ax1.set_ylabel("final value (as configured)")
    ax1.set_title("loss terms at the end of each run")
    ax1.legend(fontsize=8)
    viol = [number(r["held_out_max_violation"]) for r in rows]
    rmin = [number(r["held_out_ricci_min"]) for r in rows]
    ax2.bar([i - 0.2 for i in range(len(rows))], [v or 0.0 for v in viol], 0.4, color="tab:red",
            label="max constraint violation")
    ax2.bar([i + 0.2 for i in range(len(rows))], [v or 0.0 for v in rmin], 0.4, color="tab:blue",
            label="min Ricci scalar R")
    ax2.axhline(0.0, color="black", linewidth=0.8)
    small = [abs(v) for v in viol + rmin if v]
    ax2.set_yscale("symlog", linthresh=max(1e-12, min(small) / 10) if small else 1e-6)
    ax2.set_xticks(range(len(rows)))
    ax2.set_xticklabels(labels, fontsize=8, rotation=rotation, ha="right" if rotation else "center")
    ax2.set_ylabel("held-out grid (never trained on)")
    ax2.set_title("held-out grid: worst violation and min R")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
