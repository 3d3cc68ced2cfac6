#!/usr/bin/env bash
# The SDK's ABI against its committed baseline, sdk/abi/lumpy_sdk.abi.xz (an
# abidw dump of liblumpy_sdk's public types and functions with every type
# they reach, compressed; changes to LibTorch's, Abseil's and the standard
# library's own functions are not reported, sdk/abi/suppressions.txt: the
# loader checks their versions itself). About a minute.
#
#   bash scripts/check_abi.sh <liblumpy_sdk.so>            check (the `sdk_abi` test)
#   bash scripts/check_abi.sh <liblumpy_sdk.so> --update   record a new baseline
#
# Fails if abidiff reports any change while LUMPY_SDK_ABI (CMakeLists.txt) is
# still the baseline's version, printing abidiff's report and what to do;
# fails too if LUMPY_SDK_ABI was bumped but the baseline not recorded again.
# Needs abigail-tools (Debian), and the library built with -g (sdk/CMakeLists.txt).
set -euo pipefail
lib=${1:?usage: check_abi.sh <liblumpy_sdk.so> [--update]}
mode=${2:-check}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/sdk/abi
for tool in abidw abidiff xz; do
  command -v $tool > /dev/null || { echo "check_abi: $tool not found; install Debian's abigail-tools" >&2; exit 1; }
done
abi=$(sed -n 's/^set(LUMPY_SDK_ABI \([0-9][0-9]*\))$/\1/p' "$root/CMakeLists.txt")
[ -n "$abi" ] || { echo "check_abi: no set(LUMPY_SDK_ABI N) line in CMakeLists.txt" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# What the SDK library exports for the engine and the tests only (declared
# LUMPY_ENGINE_API in sdk/src's headers, never in sdk/include) is no part of
# the plugin ABI: not reported, under today's names and under those the
# baseline recorded (sdk/abi/internal.txt), so that renaming one is no change.
suppressions=$work/suppressions.txt
cp "$dir/suppressions.txt" "$suppressions"
grep -rhoE 'LUMPY_ENGINE_API +[^;(]*[ *&]([A-Za-z_][A-Za-z0-9_]*) *\(' "$root/sdk/src" --include=*.h |
  sed -E 's/.*[ *&]([A-Za-z_][A-Za-z0-9_]*) *\($/function \1/' > "$work/internal.txt"
grep -rhoE '(class|struct) +LUMPY_ENGINE_API +[A-Za-z_][A-Za-z0-9_]*' "$root/sdk/src" --include=*.h |
  awk '{print "class", $3}' >> "$work/internal.txt"
if [ "$mode" != --update ] && [ -f "$dir/internal.txt" ]; then cat "$dir/internal.txt" >> "$work/internal.txt"; fi
sort -u -o "$work/internal.txt" "$work/internal.txt"
functions=$(awk '$1 == "function" {print $2}' "$work/internal.txt" | paste -sd'|')
classes=$(awk '$1 == "class" {print $2}' "$work/internal.txt" | paste -sd'|')
cat >> "$suppressions" <<EOF
[suppress_function]
  name_regexp = ^lumpy::(ray::)?(${functions})\$
[suppress_function]
  name_regexp = ^lumpy::(ray::)?(${classes})::
EOF
dump() {
  abidw --headers-dir "$root/sdk/include/lumpy" --suppressions "$suppressions" \
    --drop-private-types --drop-undefined-syms --no-show-locs --no-comp-dir-path \
    --no-corpus-path --type-id-style hash --out-file "$2" "$1"
}
dump "$lib" "$work/current.abi"
if [ "$mode" = --update ]; then
  xz -9 -c "$work/current.abi" > "$dir/lumpy_sdk.abi.xz"
  cp "$work/internal.txt" "$dir/internal.txt"
  echo "$abi" > "$dir/version"
  echo "check_abi: recorded the SDK's ABI $abi in sdk/abi/lumpy_sdk.abi.xz"
  exit 0
fi
recorded=$(cat "$dir/version")
if [ "$recorded" != "$abi" ]; then
  echo "check_abi: LUMPY_SDK_ABI is $abi but the baseline in sdk/abi/ is ABI $recorded; after a bump," \
       "record the new ABI: bash scripts/check_abi.sh $lib --update" >&2
  exit 1
fi
xz -dc "$dir/lumpy_sdk.abi.xz" > "$work/baseline.abi"
set +e
abidiff --suppressions "$suppressions" --no-show-locs --no-unreferenced-symbols \
  "$work/baseline.abi" "$work/current.abi" > "$work/report.txt" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  echo "check_abi: the SDK's ABI is ABI $abi's baseline, unchanged"
  exit 0
fi
cat "$work/report.txt"
if [ $((rc & 3)) -ne 0 ]; then
  echo "check_abi: abidiff failed (exit $rc)" >&2
  exit 1
fi
kind="in the types or functions plugins use"
[ $((rc & 8)) -ne 0 ] && kind="removing what plugins built before it use"
echo "check_abi: the SDK's ABI changed ($kind) but LUMPY_SDK_ABI is still $abi:" \
     "bump it in CMakeLists.txt (set(LUMPY_SDK_ABI $((abi + 1)))), rebuild," \
     "and record the new baseline: bash scripts/check_abi.sh $lib --update" >&2
exit 1
