#!/usr/bin/env bash
# The two set-up commands of the README, for a fresh Debian 12 machine (root):
#
#   bash scripts/bootstrap.sh run    install what a user needs, build, train the quickstart
#   bash scripts/bootstrap.sh test   install what a developer needs, build, run every test
#
# Installs Debian packages only (nothing is downloaded from anywhere else),
# builds with the `release` CMake preset into build/release, using both cores.
set -euo pipefail

mode=${1:-run}
case "$mode" in
  run|test) ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

# What building and running lumpy needs. libopenblas0-pthread: Debian's
# LibTorch calls the system BLAS, and the reference BLAS is many times slower.
# libgloo-dev: the headers of the Gloo backend of LibTorch's c10d (compiled
# into Debian's LibTorch), which spreads one training over processes.
# libgoogle-perftools-dev: tcmalloc, which keeps the large tensors of a
# training step in the process instead of mapping them from the kernel again
# every step (a third of the physics step's time with glibc's malloc).
packages=(cmake g++ make
          libtorch-dev libgloo-dev libopenblas0-pthread libgoogle-perftools-dev
          libboost-dev libboost-filesystem-dev
          libtomlplusplus-dev libabsl-dev libcli11-dev nlohmann-json3-dev zlib1g-dev
          python3-matplotlib)
if [ "$mode" = test ]; then
  # slurm-wlm, munge: the Slurm tests start a one-node cluster on this machine
  # (tests/slurm/cluster.sh). abigail-tools: abidiff compares the SDK
  # library's ABI with its committed baseline (test sdk_abi).
  packages+=(libgtest-dev libgmock-dev libbenchmark-dev slurm-wlm munge abigail-tools)
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
installed=$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | grep -c "install ok installed" || true)
if [ "$installed" -eq "${#packages[@]}" ]; then
  echo "== all ${#packages[@]} packages are installed"
else
  echo "== installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

if [ "$mode" = test ]; then
  flags=(-DLUMPY_BUILD_TESTS=ON -DLUMPY_BUILD_BENCHMARKS=ON)
else
  flags=(-DLUMPY_BUILD_TESTS=OFF -DLUMPY_BUILD_BENCHMARKS=OFF)
fi
echo "== configuring (build/release)"
cmake --preset release "${flags[@]}" > /dev/null
echo "== building"
cmake --build --preset release

if [ "$mode" = run ]; then
  echo "== training the quickstart"
  exec build/release/bin/lumpy run
else
  echo "== testing"
  exec ctest --preset release
fi
