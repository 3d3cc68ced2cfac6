#!/usr/bin/env bash
# Installs this build into a temporary prefix, builds the SDK template out of
# tree against the installed package (as a plugin author would), runs the
# template's own test, and trains an experiment that uses the new plugin.
set -euo pipefail
trap 'echo "sdk template test: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
build_dir=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" > "$work/install.log"
cp -r "$prefix/share/lumpy/template" "$work/src"
cmake -S "$work/src" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  > "$work/configure.log"
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
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
echo "sdk template: built out of tree, tested, and trained with"
