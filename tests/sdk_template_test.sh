#!/usr/bin/env bash
# Installs this build into a temporary prefix, builds the SDK templates (a
# constraint handler and a metric) out of tree against the installed package
# (as a plugin author would), runs each template's own tests (the SDK's
# conformance kit among them), and trains an experiment with each new plugin.
set -euo pipefail
trap 'echo "sdk template test: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
build_dir=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" > "$work/install.log"
cp -r "$prefix/share/lumpy/template/constraint" "$work/src"
# No build type given: the template builds optimised by default, with one
# precompiled LibTorch header for the plugin and its test.
cmake -S "$work/src" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log"
grep -q "^CMAKE_BUILD_TYPE:STRING=Release$" "$work/build/CMakeCache.txt"
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
pch_count=$(find "$work/build" -name "*.gch" | wc -l)
[ "$pch_count" -eq 1 ] || { echo "expected one precompiled header, found $pch_count" >&2; exit 1; }
ctest --test-dir "$work/build" --output-on-failure
# The installed CLI finds the built-in plugins next to itself and the new one
# through LUMPY_PLUGIN_PATH.
export LUMPY_PLUGIN_PATH=$work/build
# Into a file, not a pipe: grep -q would close the pipe at the first match and
# the SIGPIPE of the still-writing lumpy fails the pipeline under pipefail.
"$prefix/bin/lumpy" plugins > "$work/plugins.txt"
grep -q "tolerant_linear" "$work/plugins.txt"
"$prefix/bin/lumpy" check "$work/src/experiment.toml"
"$prefix/bin/lumpy" run "$work/src/experiment.toml" --out "$work/run"
[[ "$(head -1 "$work/run/metrics.csv")" == *wec.active* ]]
grep -q '"status": "completed"' "$work/run/summary.json"
# The installed quickstart is found without arguments.
cd "$work" && LUMPY_PLUGIN_PATH= "$prefix/bin/lumpy" check "$prefix/share/lumpy/experiments/quickstart.toml"
# The metric template: built, its conformance test run, and its exponent
# fitted to the supernovae.
cp -r "$prefix/share/lumpy/template/metric" "$work/metric_src"
cmake -S "$work/metric_src" -B "$work/metric_build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  > "$work/metric_configure.log"
cmake --build "$work/metric_build" -j2 > "$work/metric_build.log" 2>&1 || { cat "$work/metric_build.log"; exit 1; }
ctest --test-dir "$work/metric_build" --output-on-failure
LUMPY_PLUGIN_PATH=$work/metric_build "$prefix/bin/lumpy" run "$work/metric_src/experiment.toml" --out "$work/metric_run"
[[ "$(head -1 "$work/metric_run/metrics.csv")" == *model.p* ]]
grep -q '"status": "completed"' "$work/metric_run/summary.json"
# The curriculum template: built, its tests run, and trained: the engine gave
# it the domain's box and called update() after every step (epsilon annealed
# from 1e-6 as the slices' weights reached delta).
cp -r "$prefix/share/lumpy/template/curriculum" "$work/curriculum_src"
cmake -S "$work/curriculum_src" -B "$work/curriculum_build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/curriculum_configure.log"
cmake --build "$work/curriculum_build" -j2 > "$work/curriculum_build.log" 2>&1 || { cat "$work/curriculum_build.log"; exit 1; }
ctest --test-dir "$work/curriculum_build" --output-on-failure
LUMPY_PLUGIN_PATH=$work/curriculum_build "$prefix/bin/lumpy" run "$work/curriculum_src/experiment.toml" --out "$work/curriculum_run"
header=$(head -1 "$work/curriculum_run/metrics.csv")
[[ "$header" == *bulk.epsilon* ]]
python3 - "$work/curriculum_run/metrics.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
first, last = float(rows[0]["bulk.epsilon"]), float(rows[-1]["bulk.epsilon"])
assert last > first, f"epsilon never annealed: {first} -> {last}"
PY
echo "sdk templates: built out of tree, tested, and trained with"
