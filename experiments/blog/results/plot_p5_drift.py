#!/usr/bin/env python3
"""Part 5 seed 1 (s17_p5_s1): the spatial curriculum's drift and the freeze.

/usr/bin/python3 experiments/blog/results/plot_p5_drift.py
reads s17_p5_s1/metrics_every100.csv (and s22_p5_s1/ when present: the same
stage with w_min = -4) and writes ../figures/05_curriculum_drift.png."""
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
COLS = [("bulk.mean_w", "mean W (spatial curriculum)", False),
        ("bulk.mean_weight", "mean factor e^(-2W)", True),
        ("sn", "SN term (chi2/N)", True),
        ("loss", "|total loss|", True)]


def read(name):
    path = os.path.join(HERE, name, "metrics_every100.csv")
    if not os.path.exists(path):
        return None
    rows = list(csv.DictReader(open(path)))
    return {c: [float(r[c]) for r in rows] for c in ["step"] + [c for c, _, _ in COLS]}


runs = [(n, label, read(n)) for n, label in
        [("s17_p5_s1", "seed 1, W unbounded"), ("s22_p5_s1", "seed 1, w_min = -4")]]
fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
for ax, (c, title, log) in zip(axes.flat, COLS):
    for _, label, m in runs:
        if m:
            ax.plot(m["step"], [abs(v) for v in m[c]] if log else m[c], lw=0.9, label=label)
    ax.axvline(27620, color="red", lw=0.8, ls="--")
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
axes[0][0].legend(fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("step (red: the metric stops learning, step 27,620)")
fig.suptitle("Part 5 (corrected file, float32): the curriculum's W drifts down where the WEC holds exactly")
fig.tight_layout()
fig.savefig(os.path.join(HERE, "..", "figures", "05_curriculum_drift.png"), dpi=110)
