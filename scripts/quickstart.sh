#!/usr/bin/env bash
# podccl quick start on a fresh Debian machine.
#   scripts/quickstart.sh bench   install packages, build, run ccl-bench on 4 local ranks
#   scripts/quickstart.sh test    install packages, build, run every test (make check)
# BUILD_DIR (default _build) holds the out-of-tree build; SKIP_APT=1 skips apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-bench}
build=${BUILD_DIR:-_build}

# What the library, its network modules and ccl-bench need; `test` adds what the tests, the
# PyTorch backend, plots, man pages and the MPI cross-checks need.
packages=(build-essential autoconf automake libtool pkg-config libhwloc-dev libjansson-dev libssl-dev
          libfabric-dev libibverbs-dev librdmacm-dev)
if [ "$mode" = test ]; then
  packages+=(libcmocka-dev libopenmpi-dev openmpi-bin mpich libmpich-dev iproute2
             python3-torch libtorch-dev pybind11-dev python3-sklearn python3-torchvision
             python3-matplotlib python3-jsonschema go-md2man)
fi
if [ "${SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "== installing: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  fi
fi

echo "== building in $build"
./autogen.sh >/dev/null
mkdir -p "$build"
# A build configured for `bench` is configured again for `test`, so that configure finds what
# the test packages added (PyTorch, cmocka, MPI, go-md2man).
if [ ! -f "$build/Makefile" ] ||
   { [ "$mode" = test ] && [ "$(cat "$build/.configured-for" 2>/dev/null)" != test ]; }; then
  ( cd "$build" && ../configure )
  echo "$mode" > "$build/.configured-for"
fi
make -C "$build" -j"$(nproc)"

case "$mode" in
  bench)
    for coll in allreduce allgather alltoall; do
      "$build"/bench/ccl-bench "$coll" -np 4 -b 8 -e 16M -f 4 -n 20 -w 5
    done ;;
  test)
    ( cd "$build" && make -j"$(nproc)" check ) ;;
  *) echo "usage: $0 bench|test" >&2; exit 2 ;;
esac
