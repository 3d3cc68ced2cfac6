#!/usr/bin/env bash
# Runs the libFuzzer harnesses built by the `fuzz` preset:
#
#   cmake --preset fuzz && cmake --build --preset fuzz --target lumpy_fuzzers
#   bash fuzz/run.sh [SECONDS] [HARNESS...]     (default: 60 s; all five)
#
# CI runs each for 45 s (a smoke run); for a long run give an hour or more,
# e.g. `bash fuzz/run.sh 3600 experiment`. Seeds: fuzz/corpus/<harness>/ and
# the repository's own files (every experiment and golden error file; the
# points, BAO and catalogue files); what a run learns is kept in
# build/fuzz/corpus/<harness>/ for the next one. A crash is written to
# fuzz/crashes/<harness>/: commit it with its fix, and the test suite
# (FuzzRegression) replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then harnesses=(experiment table catalogue checkpoint run_files); fi

status=0
for h in "${harnesses[@]}"; do
  bin=build/fuzz/bin/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz/run.sh: $bin is not built (cmake --build --preset fuzz --target lumpy_fuzzers)" >&2; exit 2; }
  work=build/fuzz/corpus/$h
  seeds=build/fuzz/seeds/$h
  rm -rf "$seeds"; mkdir -p "$work" "$seeds" "fuzz/crashes/$h"
  cp fuzz/corpus/$h/* "$seeds/"
  case $h in
    experiment) for f in experiments/*.toml experiments/*/*.toml experiments/blog/as_run/*.toml \
                         tests/config_errors/*.toml tests/data/*.toml; do
                  cp "$f" "$seeds/$(echo "$f" | tr / _)"; done ;;
    table) cp data/bao_dr12.csv "$seeds/" ;;
    catalogue) head -40 data/mock_pantheon.dat > "$seeds/mock_head.dat" ;;
    checkpoint) ;;  # fuzz/corpus/checkpoint: small archives in LibTorch's layout
    run_files) ;;   # fuzz/corpus/run_files: a sweep.json, a summary.json and a metrics.csv
  esac
  echo "== fuzz_$h: $seconds s"
  log=build/fuzz/fuzz_$h.log
  if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 -max_len=16384 -timeout=10 \
        -rss_limit_mb=4096 -artifact_prefix="fuzz/crashes/$h/" "$work" "$seeds" > "$log" 2>&1; then
    status=1
    echo "fuzz_$h FAILED: input kept in fuzz/crashes/$h/; the log is $log" >&2
    grep -A30 -m1 "ERROR\|==ABORTING\|deadly signal" "$log" >&2 || tail -40 "$log" >&2
  fi
  runs=$(grep -m1 "stat::number_of_executed_units" "$log" | awk '{print $2}')
  speed=$(grep -m1 "stat::average_exec_per_sec" "$log" | awk '{print $2}')
  cov=$(grep -E "^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)" "$log" | tail -1 | grep -oE "cov: [0-9]+ ft: [0-9]+" || true)
  echo "   fuzz_$h: ${runs:-?} executions, ${speed:-?} per second, ${cov:-?}, corpus $(ls "$work" | wc -l) inputs"
done
exit $status
