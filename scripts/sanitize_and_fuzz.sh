#!/usr/bin/env bash
# The checks CI runs after the test suite (.ci/run), each also a developer's
# command on a Debian 12 machine (root, or sudo):
#
#   bash scripts/sanitize_and_fuzz.sh [FUZZ_SECONDS]
#
# 1. the `sanitize` preset (ASan + UBSan, gcc): builds everything and runs the
#    fast tests under it (ctest --preset sanitize: config, params, data,
#    loader, CLI errors, handlers, the fuzz regressions); any report fails.
# 2. the `fuzz` preset (clang-14, libFuzzer): builds the harnesses and
#    runs each for FUZZ_SECONDS (default 45; fuzz/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-45}

packages=(clang-14 libclang-rt-14-dev libfuzzer-14-dev)
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
installed=$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | grep -c "install ok installed" || true)
if [ "$installed" -ne "${#packages[@]}" ]; then
  echo "== installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

start=$(date +%s)
echo "== sanitize: configuring and building (build/sanitize)"
cmake --preset sanitize > /dev/null
cmake --build --preset sanitize
echo "== sanitize: fast tests under ASan + UBSan"
ctest --preset sanitize
echo "== sanitize: $(( $(date +%s) - start )) s"

start=$(date +%s)
echo "== fuzz: configuring and building (build/fuzz, clang-14)"
cmake --preset fuzz > /dev/null
cmake --build --preset fuzz --target lumpy_fuzzers
bash fuzz/run.sh "$seconds"
echo "== fuzz: $(( $(date +%s) - start )) s"
