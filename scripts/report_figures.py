#!/usr/bin/env python3
"""The figures of `lumpy report RUN_DIR`, and report.md.

Reads RUN_DIR/metrics.csv and summary.json, and the tables `lumpy report`
computed in RUN_DIR/report/ (worldline.csv, plane_{xy,yz,xz}.csv,
curriculum_<domain>.csv, hubble_<term>.csv and _curve.csv). Writes, in
RUN_DIR/report/:
  losses.csv/.png        loss, every term, handler multipliers and penalties
  physical.csv/.png      fitted physical scalars (Omega_m, h0, ...) over steps
  worldline.png          H_x, H_y, H_z, H_mean and shear along the observer's world line
  planes_today.png       R and shear today on three planes (heat maps)
  planes_today_3d.png    the same as surfaces
  curriculum.png         learned curriculum weights (t-x plane, over steps)
  hubble_<term>.png      distance moduli against z, with residuals
  report.md              all of them, with the run's numbers
Units: lengths and times in 1000 Mpc (c = 1), so H in units of c/(1000 Mpc)
= 299.79 km/s/Mpc; the time label t = 5a - 4 of the reference (t = 1 today)."""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors  # noqa: E402

H_UNIT = "c / 1000 Mpc"
KMS_PER_UNIT = 299792.458 / 1000.0  # one H unit in km/s/Mpc


def read_csv(path):
    """Header and columns (floats; non-numbers as NaN; strings kept in raw).

    A row with another number of fields than the header, or a last line
    without its newline (a write that did not finish, e.g. a run killed
    mid-row), is dropped with a warning, never drawn as data."""
    with open(path, newline="") as f:
        text = f.read()
    rows = list(csv.reader(text.splitlines()))
    header, body = rows[0], []
    unfinished = len(rows) - 1 if text and not text.endswith("\n") and len(rows) > 1 else -1
    for i, r in enumerate(rows[1:], start=1):
        if not r:
            continue
        if len(r) != len(header) or i == unfinished:
            print(f"warning: {path}:{i + 1}: dropped a row with {len(r)} of its {len(header)} fields"
                  f"{'' if i != unfinished else ' and no line end'} (a write that did not finish)",
                  file=sys.stderr)
            continue
        body.append(r)
    cols, raw = {}, {}
    for j, name in enumerate(header):
        vals = []
        for r in body:
            try:
                vals.append(float(r[j]) if j < len(r) and r[j] != "" else math.nan)
            except ValueError:
                vals.append(math.nan)
        cols[name] = np.array(vals)
        raw[name] = [r[j] if j < len(r) else "" for r in body]
    return header, cols, raw


def write_csv(path, names, columns):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in zip(*columns):
            w.writerow(["" if not math.isfinite(v) else repr(float(v)) for v in row])


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


BAD_STOPS = ("rays_non_finite", "rays_non_lorentzian", "rays_singular")


def bad_ray_steps(header, m):
    """Logged steps at which some ray stopped on a bad state."""
    cols = [h for h in header if h.rsplit(".", 1)[-1] in BAD_STOPS]
    if not cols:
        return np.array([])
    bad = np.zeros(len(m["step"]), dtype=bool)
    for c in cols:
        bad |= np.nan_to_num(m[c]) > 0
    return m["step"][bad]


def bad_ray_lines(header, m):
    """report.md lines: where rays first stopped on a bad state, per term."""
    lines = []
    for h in header:
        term, _, what = h.rpartition(".")
        if what != "rays_non_lorentzian":
            continue
        cols = [f"{term}.{w}" for w in BAD_STOPS if f"{term}.{w}" in m]
        bad = np.zeros(len(m["step"]), dtype=bool)
        for c in cols:
            bad |= np.nan_to_num(m[c]) > 0
        if not bad.any():
            continue
        i = int(np.argmax(bad))
        where = ""
        if f"{term}.bad_t" in m and np.isfinite(m[f"{term}.bad_t"][i]):
            x = [m[f"{term}.bad_{a}"][i] for a in "txyz"]
            eig = [m[f"{term}.bad_eig{k}"][i] for k in (0, 1)]
            where = (f" at (t,x,y,z) = ({', '.join(f'{v:.3g}' for v in x)}), affine parameter "
                     f"{m[f'{term}.bad_lambda'][i]:.3g}, the metric's two smallest eigenvalues there "
                     f"{eig[0]:.3g}, {eig[1]:.3g}")
        kinds = ", ".join(f"{c.rsplit('.', 1)[-1]} = {m[c][i]:g}" for c in cols if m[c][i] > 0)
        lines.append(f"Rays of `{term}` stopped on a bad state at {int(bad.sum())} of {len(bad)} logged steps; "
                     f"first at step {int(m['step'][i])} ({kinds}){where}.")
    return lines


def training(run, out, header, m, summary):
    """Loss terms and handler state (log scale); physical scalars."""
    skip = {"step", "loss", "lr", "wall_time_s"}
    terms = summary.get("terms") or {}
    term_cols = [h for h in header if h in terms] or [h for h in header if "." not in h and h not in skip]
    # Every column a handler logs, whatever its plugin calls it (summary.json's
    # telemetry_columns); a summary written before it existed: the built-ins'.
    groups = summary.get("telemetry_columns") or {}
    if groups.get("handlers") is not None:
        listed = {c for cols in groups["handlers"].values() for c in cols}
        handler_cols = [h for h in header if h in listed]
    else:
        handler_cols = [h for h in header if h.rsplit(".", 1)[-1] in ("lambda", "mu", "log_sigma", "penalty")]
    physical_cols = [h for h in header if h.startswith("model.") or h.endswith(".omega_m")]
    step = m["step"]
    write_csv(os.path.join(out, "losses.csv"), ["step", "loss"] + term_cols + handler_cols,
              [step, m["loss"]] + [m[c] for c in term_cols + handler_cols])
    has_handlers = any(np.isfinite(m[c]).any() for c in handler_cols)
    fig, axes = plt.subplots(1, 2 if has_handlers else 1, figsize=(13 if has_handlers else 7, 4.8), squeeze=False)
    axes = axes[0]
    ax = axes[0]
    for c in ["loss"] + term_cols:
        y = np.abs(m[c])
        y = np.where(y > 0, y, np.nan)
        if np.isfinite(y).any():
            ax.plot(step, y, lw=1.6 if c == "loss" else 1.0, color="k" if c == "loss" else None,
                    label=c if c == "loss" else f"{c} ({terms.get(c, 'term')})")
    # Steps where a ray stopped on a bad state (non-finite, non-Lorentzian,
    # singular): red ticks along the bottom.
    for s_bad in bad_ray_steps(header, m):
        ax.axvline(s_bad, ymin=0, ymax=0.04, color="red", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("value (|loss|; 0 not shown)")
    ax.set_title("loss and its terms" + (" (red ticks: rays stopped on a bad state)"
                                          if len(bad_ray_steps(header, m)) else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if has_handlers:
        ax = axes[1]
        for c in handler_cols:
            y = m[c]
            if c.endswith(".log_sigma"):
                y = np.exp(y)
                c = c.replace(".log_sigma", ".sigma")
            y = np.abs(y)
            y = np.where(y > 0, y, np.nan)
            if np.isfinite(y).any():
                ax.plot(step, y, lw=1.0, label=c)
        ax.set_xlabel("step")
        ax.set_title("handlers' state: each handler's own columns (|value|; 0 not shown)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, os.path.join(out, "losses.png"))
    figs = ["losses.png"]
    if physical_cols:
        write_csv(os.path.join(out, "physical.csv"), ["step"] + physical_cols, [step] + [m[c] for c in physical_cols])
        fig, axes = plt.subplots(1, len(physical_cols), figsize=(5.5 * len(physical_cols), 4), squeeze=False)
        for ax, c in zip(axes[0], physical_cols):
            ax.plot(step, m[c], color="C3")
            ax.set_xlabel("step")
            name = c.rsplit(".", 1)[-1]
            ax.set_ylabel({"omega_m": "$\\Omega_m$", "h0": "$H_0$ (km/s/Mpc)"}.get(name, name))
            ax.set_title(f"{c}: {m[c][0]:.4g} -> {m[c][-1]:.6g}")
            ax.grid(alpha=0.3)
        save(fig, os.path.join(out, "physical.png"))
        figs.append("physical.png")
    return figs


def worldline(out):
    path = os.path.join(out, "worldline.csv")
    if not os.path.exists(path):
        return []
    _, w, _ = read_csv(path)
    t = w["t"]
    h_mean = (w["H_x"] + w["H_y"] + w["H_z"]) / 3.0
    write_csv(os.path.join(out, "worldline_hubble.csv"), ["t", "H_x", "H_y", "H_z", "H_mean", "shear_sq", "R"],
              [t, w["H_x"], w["H_y"], w["H_z"], h_mean, w["shear_sq"], w["ricci_scalar"]])
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    ax = axes[0]
    for c, style in (("H_x", "-"), ("H_y", "--"), ("H_z", ":")):
        ax.plot(t, w[c], style, lw=1.2, label=c)
    ax.plot(t, h_mean, "k", lw=2, label="H_mean")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(f"Hubble rate ({H_UNIT})")
    at = ", ".join(f"{w[c][0]:g}" for c in ("x", "y", "z"))  # the observer's position ([observer] event)
    ax.set_title(f"observer's world line (t, {at}): directional Hubble rates")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    sec = ax.secondary_yaxis("right", functions=(lambda h: h * KMS_PER_UNIT, lambda k: k / KMS_PER_UNIT))
    sec.set_ylabel("km/s/Mpc")
    ax = axes[1]
    s = np.where(w["shear_sq"] > 0, w["shear_sq"], np.nan)
    ax.plot(t, s, color="C4")
    ax.set_yscale("log")
    ax.set_ylabel(f"shear $\\sigma^2$ ({H_UNIT})$^2$")
    ax.set_xlabel("t (reference label t = 5a - 4; t = 1 today)")
    ax.grid(alpha=0.3)
    top = axes[0].secondary_xaxis("top", functions=(lambda x: (x + 4) / 5, lambda a: 5 * a - 4))
    top.set_xlabel("scale-factor label a = (t + 4) / 5")
    save(fig, os.path.join(out, "worldline.png"))
    return ["worldline.png"]


def worldline_notebook(out):
    """The part-1 notebook's kinematics (its d_c g_a0 in place of d_t gamma_ij)
    beside the correct ones: which curves the post showed."""
    path = os.path.join(out, "worldline_notebook.csv")
    if not os.path.exists(path):
        return []
    _, w, _ = read_csv(path)
    t = w["t"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    ax = axes[0]
    ax.plot(t, w["H_mean"], color="royalblue", lw=2, label="H_mean (d_t gamma_ij)")
    ax.plot(t, w["H_mean_notebook"], "--", color="darkorange", lw=2, label="as the part-1 notebook (d_c g_a0)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("coordinate time t")
    ax.set_ylabel(f"H ({H_UNIT})")
    ax.set_title("mean Hubble rate along the observer's world line")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[1]
    for c, style, color, label in (("shear_sq", "-", "crimson", "sigma^2 (d_t gamma_ij)"),
                                   ("shear_sq_notebook", "--", "darkorange", "as the part-1 notebook")):
        y = np.where(w[c] > 0, w[c], np.nan)
        ax.plot(t, y, style, color=color, lw=2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("coordinate time t")
    ax.set_ylabel(f"$\\sigma^2$ ({H_UNIT})$^2$")
    ax.set_title("shear along the observer's world line")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, os.path.join(out, "worldline_notebook.png"))
    return ["worldline_notebook.png"]


PLANES = (("xy", "x", "y", "z"), ("yz", "y", "z", "x"), ("xz", "x", "z", "y"))  # name, axes, the fixed one


def grid_of(p, u, v, value):
    uu, vv = np.unique(p[u]), np.unique(p[v])
    z = np.full((len(vv), len(uu)), np.nan)
    iu = np.searchsorted(uu, p[u])
    iv = np.searchsorted(vv, p[v])
    z[iv, iu] = value
    return uu, vv, z


def planes(out):
    data = []
    for name, u, v, fixed in PLANES:
        path = os.path.join(out, f"plane_{name}.csv")
        if os.path.exists(path):
            p = read_csv(path)[1]
            # Through the observer's position at its time ([observer] event).
            data.append((name, u, v, f"{fixed} = {p[fixed][0]:g}" if len(p[fixed]) else fixed, p))
    if not data:
        return []
    fields = (("ricci_scalar", "Ricci scalar R", "R (1000 Mpc)$^{-2}$"),
              ("shear_sq", "shear $\\sigma^2$", f"$\\sigma^2$ ({H_UNIT})$^2$"))
    fig, axes = plt.subplots(2, len(data), figsize=(5 * len(data), 8.4), squeeze=False)
    for row, (field, title, unit) in enumerate(fields):
        for col, (name, u, v, fixed, p) in enumerate(data):
            ax = axes[row][col]
            uu, vv, z = grid_of(p, u, v, p[field])
            if field == "ricci_scalar":
                lim = np.nanmax(np.abs(z)) or 1.0
                norm = colors.TwoSlopeNorm(vcenter=0.0, vmin=min(np.nanmin(z), -1e-12 * lim), vmax=max(np.nanmax(z), 1e-12 * lim))
                im = ax.pcolormesh(uu, vv, z, cmap="RdBu_r", norm=norm, shading="auto")
                if np.nanmin(z) < 0 < np.nanmax(z):
                    ax.contour(uu, vv, z, levels=[0.0], colors="k", linewidths=0.8)
            else:
                im = ax.pcolormesh(uu, vv, z, cmap="viridis", shading="auto")
            fig.colorbar(im, ax=ax, label=unit)
            ax.set_xlabel(f"{u} (1000 Mpc)")
            ax.set_ylabel(f"{v} (1000 Mpc)")
            ax.set_title(f"{title} today (t = {p['t'][0]:g}), {fixed}" if len(p["t"]) else f"{title} today, {fixed}")
            ax.set_aspect("equal")
    save(fig, os.path.join(out, "planes_today.png"))
    fig = plt.figure(figsize=(5 * len(data), 8.4))
    for row, (field, title, unit) in enumerate(fields):
        for col, (name, u, v, fixed, p) in enumerate(data):
            ax = fig.add_subplot(2, len(data), row * len(data) + col + 1, projection="3d")
            uu, vv, z = grid_of(p, u, v, p[field])
            U, V = np.meshgrid(uu, vv)
            norm = None
            if field == "ricci_scalar" and np.nanmin(z) < 0 < np.nanmax(z):
                norm = colors.TwoSlopeNorm(vcenter=0.0, vmin=np.nanmin(z), vmax=np.nanmax(z))
            surf = ax.plot_surface(U, V, z, cmap="RdBu_r" if field == "ricci_scalar" else "viridis", norm=norm,
                                   linewidth=0, antialiased=True)
            fig.colorbar(surf, ax=ax, shrink=0.6, pad=0.12, label=unit)
            ax.set_xlabel(u)
            ax.set_ylabel(v)
            ax.set_title(f"{title}, t = {p['t'][0]:g}, {fixed}" if len(p["t"]) else f"{title}, {fixed}", fontsize=9)
    save(fig, os.path.join(out, "planes_today_3d.png"))
    return ["planes_today.png", "planes_today_3d.png"]


def curricula(out, header, m, summary):
    files = sorted(f for f in os.listdir(out) if f.startswith("curriculum_") and f.endswith(".csv"))
    # Every column a curriculum logs (summary.json's telemetry_columns), else the built-ins'.
    groups = (summary.get("telemetry_columns") or {}).get("curricula")
    if groups is not None:
        listed = {c for cols in groups.values() for c in cols}
        mean_cols = [h for h in header if h in listed]
    else:
        mean_cols = [h for h in header if h.endswith(".mean_w") or h.endswith(".mean_weight")]
    if not files and not mean_cols:
        return []
    fig, axes = plt.subplots(1, len(files) + 1, figsize=(6 * (len(files) + 1), 4.6), squeeze=False)
    for ax, f in zip(axes[0], files):
        p = read_csv(os.path.join(out, f))[1]
        tt, xx, z = grid_of(p, "t", "x", p["weight"])
        im = ax.pcolormesh(xx, tt, z.T if z.shape != (len(tt), len(xx)) else z, cmap="magma",
                           norm=colors.LogNorm(), shading="auto")
        fig.colorbar(im, ax=ax, label="weight of a point's loss (uniform mean = 1)")
        ax.set_xlabel("x (1000 Mpc), y = z = 0")
        ax.set_ylabel("t")
        ax.set_title(f"{f[len('curriculum_'):-4]}: learned weight (e$^{{-2W}}$/2 for spatial_weight_net)", fontsize=9)
    ax = axes[0][-1]
    for c in mean_cols:
        ax.plot(m["step"], m[c], label=c)
    ax.set_xlabel("step")
    ax.set_title("curricula over training: their telemetry")
    ax.set_yscale("symlog")
    ax.grid(alpha=0.3)
    if mean_cols:
        ax.legend(fontsize=8)
    save(fig, os.path.join(out, "curriculum.png"))
    return ["curriculum.png"]


def hubble(out):
    figs, stats = [], {}
    for f in sorted(os.listdir(out)):
        if not (f.startswith("hubble_") and f.endswith(".csv")) or f.endswith("_curve.csv"):
            continue
        term = f[len("hubble_"):-4]
        h = read_csv(os.path.join(out, f))[1]
        curve_path = os.path.join(out, f"hubble_{term}_curve.csv")
        _, c, craw = read_csv(curve_path) if os.path.exists(curve_path) else (None, None, None)
        ok = np.isfinite(h["residual"])
        chi2 = float(np.sum((h["residual"][ok] / h["sigma"][ok]) ** 2))
        n = int(ok.sum())
        # The reference read-out gives every supernova a model distance; those
        # beyond the ray's largest sampled z carry its shortfall.
        reached = h["reached"] > 0.5 if "reached" in h else ok
        beyond = ok & ~reached
        stats[term] = {"n": len(ok), "modelled": n, "reached": int((ok & reached).sum()), "chi2": chi2,
                       "mean_residual": float(np.mean(h["residual"][ok])) if n else math.nan}
        fig, axes = plt.subplots(2, 1, figsize=(8.5, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
        ax = axes[0]
        ax.errorbar(h["z"], h["mu_obs"], yerr=h["sigma"], fmt=".", ms=2.5, lw=0.4, color="grey", alpha=0.6,
                    label=f"supernovae ({len(ok)})")
        if c is not None:
            for label in dict.fromkeys(craw["ray"]):
                sel = np.array([r == label for r in craw["ray"]])
                ax.plot(c["z"][sel], c["mu_model"][sel], lw=1.3, label=f"model, {label}")
        ax.set_xscale("log")
        ax.set_ylabel("distance modulus $\\mu$ (mag)")
        extra = f" ({int(beyond.sum())} beyond the ray's reach, with its shortfall)" if beyond.any() else ""
        ax.set_title(f"Hubble diagram ({term}): $\\chi^2$/N = {chi2 / max(n, 1):.4f} over {n}{extra}", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax = axes[1]
        inside = ok & reached
        ax.errorbar(h["z"][inside], -h["residual"][inside], yerr=h["sigma"][inside], fmt=".", ms=2.5, lw=0.4,
                    color="C0", alpha=0.6)
        if beyond.any():
            ax.errorbar(h["z"][beyond], -h["residual"][beyond], yerr=h["sigma"][beyond], fmt=".", ms=2.5, lw=0.4,
                        color="C3", alpha=0.6, label="beyond the ray's largest sampled z")
            ax.legend(fontsize=8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("redshift z")
        ax.set_ylabel("$\\mu_{obs} - \\mu_{model}$")
        ax.grid(alpha=0.3)
        save(fig, os.path.join(out, f"hubble_{term}.png"))
        figs.append(f"hubble_{term}.png")
    return figs, stats


def fmt(v):
    return f"{v:.6g}" if isinstance(v, (int, float)) else str(v)


def report_md(run, out, summary, figs, sn_stats):
    lines = [f"# Report: {summary.get('experiment', os.path.basename(run))}", ""]
    rt = summary.get("runtime", {})
    lines.append(f"Run `{run}`: status **{summary.get('status', '?')}**, {summary.get('steps', '?')} steps, "
                 f"{fmt(summary.get('wall_time_s', math.nan))} s, seed {rt.get('seed', '?')}, {rt.get('dtype', '?')}.")
    if summary.get("error"):
        lines.append(f"Error: {summary['error']}")
    lines += ["", "## Final values", "", "| quantity | value |", "| --- | --- |"]
    for k, v in (summary.get("final") or {}).items():
        lines.append(f"| {k} | {fmt(v)} |")
    obs = summary.get("observer_today") or summary.get("observer")
    if obs:
        event = ", ".join(f"{a:g}" for a in obs.get("event", [1, 0, 0, 0]))
        lines += ["", f"## The observer today ({event})", "", "| quantity | value |", "| --- | --- |"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in obs.items() if k != "event"]
    header, m, _ = read_csv(os.path.join(run, "metrics.csv"))
    bad = bad_ray_lines(header, m)
    if bad:
        lines += ["", "## Rays that stopped on a bad state", ""] + bad
    held = summary.get("held_out") or {}
    if held:
        lines += ["", "## Held-out checks (a grid no training step saw, then a search between its points)", "",
                  "| domain | points | min R on the grid | at (t,x,y,z) | min R found between | at | "
                  "constraint | max violation | found between | mean |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for d, h in held.items():
            at = ", ".join(f"{a:.3g}" for a in h.get("ricci_min_at", []))
            ref = h.get("refined") or {}
            ref_at = ", ".join(f"{a:.3g}" for a in ref.get("ricci_min_at", []))
            cons = h.get("constraints") or {"-": {}}
            for name, c in cons.items():
                lines.append(f"| {d} | {h.get('points')} | {fmt(h.get('ricci_min', ''))} | ({at}) | "
                             f"{fmt(ref.get('ricci_min', ''))} | ({ref_at}) | {name} | "
                             f"{fmt(c.get('max', ''))} | {fmt(c.get('refined_max', ''))} | {fmt(c.get('mean', ''))} |")
            if ref:
                lines += ["", f"Search ({d}): {ref.get('evaluations')} evaluations from {ref.get('starts')} starts; "
                          f"largest |grad R| met {fmt(ref.get('lipschitz_estimate', ''))}, so min R >= "
                          f"{fmt(ref.get('ricci_lower_bound_estimate', ''))} if that bounds |grad R| everywhere "
                          "(an estimate, not a proof)."]
    for term, s in sn_stats.items():
        beyond = s["modelled"] - s["reached"]
        more = f" ({beyond} beyond the ray's reach, kept with the reference's shortfall)" if beyond else ""
        lines += ["", f"Supernova term `{term}`: {s['reached']} of {s['n']} reached{more}; chi^2 = {s['chi2']:.6g}, "
                  f"chi^2/N = {s['chi2'] / max(s['modelled'], 1):.6g}; mean residual {s['mean_residual']:.4g} mag."]
    lines += ["", "## Figures", ""]
    captions = {
        "losses.png": "Loss terms and the constraint handlers' state over steps (log scale).",
        "physical.png": "Fitted physical scalars over steps.",
        "worldline.png": "Hubble rates and shear along the observer's world line, t in [-4, 1].",
        "worldline_notebook.png": "H_mean and shear along the world line, correct (solid) and as the "
                                  "part-1 notebook computed them (dashed: d_c g_a0 in place of d_t gamma_ij).",
        "planes_today.png": "Ricci scalar (black line: R = 0) and shear today on three planes.",
        "planes_today_3d.png": "The same as surfaces.",
        "curriculum.png": "Learned curriculum weights.",
    }
    for f in figs:
        lines += [f"{captions.get(f, 'Hubble diagram with residuals.')}", "", f"![{f}]({f})", ""]
    lines += ["Tables: every figure's numbers are in the CSV files beside it (full precision)."]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(run):
    out = os.path.join(run, "report")
    os.makedirs(out, exist_ok=True)
    summary = {}
    if os.path.exists(os.path.join(run, "summary.json")):
        with open(os.path.join(run, "summary.json")) as f:
            summary = json.load(f)
    header, m, _ = read_csv(os.path.join(run, "metrics.csv"))
    figs = training(run, out, header, m, summary)
    figs += worldline(out)
    figs += worldline_notebook(out)
    figs += planes(out)
    figs += curricula(out, header, m, summary)
    hf, sn_stats = hubble(out)
    figs += hf
    report_md(run, out, summary, figs, sn_stats)
    print(f"figures: {', '.join(figs)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report_figures.py RUN_DIR")
    main(sys.argv[1])
