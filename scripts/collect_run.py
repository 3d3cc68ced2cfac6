#!/usr/bin/env python3
"""What a long run's result needs in the repository, from its run folder
(kept outside the work tree): summary.json, metrics.csv thinned to every
100th step (plus every row where a ray stopped on a bad state or more than
one supernova went unreached), a survival line, and whatever the run folder
already holds of `lumpy report` figures and `lumpy sky` / `lumpy certify`
outputs.

usage: collect_run.py RUN_DIR DEST_DIR

Prints one line: steps, rows after step 1000 with a non-Lorentzian ray or
more than one unreached supernova, the first such step, the step from which
the WEC loss first read exactly 0, the final Omega_m.
"""
import csv
import json
import os
import shutil
import sys


def main(run, dest):
    os.makedirs(dest, exist_ok=True)
    if os.path.exists(os.path.join(run, "summary.json")):
        shutil.copy(os.path.join(run, "summary.json"), dest)
    else:  # a run still going: its metrics so far, no summary yet
        print(f"{run}: no summary.json yet (the run is still going); metrics only", file=sys.stderr)
    with open(os.path.join(run, "metrics.csv")) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}

    def value(row, name):
        i = col.get(name)
        if i is None or i >= len(row) or row[i] in ("", "nan", "null"):
            return float("nan")
        return float(row[i])

    def trouble(row):
        return value(row, "sn.rays_non_lorentzian") > 0 or value(row, "sn.unreached") > 1

    kept = [r for r in body if int(r[0]) % 100 == 0 or trouble(r) or r is body[-1]]
    with open(os.path.join(dest, "metrics_every100.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(kept)
    late = [r for r in body if int(r[0]) > 1000 and trouble(r)]
    wec_zero = next((int(r[0]) for r in body if value(r, "wec") == 0.0), None)
    for name in ("sky_best.json", "sky_final.json", "sky_best_step.json", "certificate_best.json",
                 "certificate_best_step.json"):
        if os.path.exists(os.path.join(run, name)):
            shutil.copy(os.path.join(run, name), dest)
    for name in ("losses.png", "worldline.png", "planes_today.png", "hubble_sn.png", "physical.png"):
        src = os.path.join(run, "report", name)
        if os.path.exists(src):
            shutil.copy(src, dest)
    last = body[-1]
    print(f"{os.path.basename(run.rstrip('/'))}: {int(last[0]) + 1} steps; {len(late)} logged rows after step 1000 "
          f"with a non-Lorentzian ray or > 1 unreached"
          f"{'' if not late else ' (first at step ' + late[0][0] + ')'}; WEC exactly 0 first at step {wec_zero}; "
          f"final Omega_m {value(last, 'efe.omega_m'):.4g}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
