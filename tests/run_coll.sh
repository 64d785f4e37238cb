#!/bin/sh
# Runs test_coll for nranks 1..5 with the algorithm the cost model picks, then with PODCCL_ALGO
# forced to ring, to cma (single copy through process_vm_readv) and to direct, then with the
# single-copy path disabled (the staged fallback), then with more ranks than cores. Extra arguments (e.g. --quick)
# go to every test_coll run. Exits non-zero if any run fails.
set -u
dir=$(dirname "$0")
if [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/tests/test_coll" ]; then
    bin=$top_builddir/tests/test_coll
elif [ -x "$dir/test_coll" ]; then
    bin=$dir/test_coll
else
    echo "run_coll.sh: test_coll not found (set top_builddir or build it next to this script)"
    exit 1
fi

failed=""
run() {
    echo "+ $*"
    "$@" || failed="$failed
  $*"
}

for n in 1 2 3 4 5; do run env -u PODCCL_ALGO "$bin" --nranks $n "$@"; done
for n in 1 2 3 4 5; do run env PODCCL_ALGO=ring "$bin" --nranks $n "$@"; done
for n in 2 3 5; do run env PODCCL_ALGO=cma "$bin" --nranks $n "$@"; done
for n in 2 3; do run env -u PODCCL_ALGO PODCCL_SHM_CMA=0 "$bin" --nranks $n "$@"; done
# Refusing the calls that do not fit is expected here: keep the library's warnings quiet.
for n in 1 2 3 4 5; do
    run env PODCCL_ALGO=direct PODCCL_DEBUG="${PODCCL_DEBUG:-NONE}" "$bin" --nranks $n \
        --algo-forced-direct "$@"
done
run env -u PODCCL_ALGO "$bin" --nranks 8 --quick

if [ -n "$failed" ]; then
    echo "run_coll.sh: FAILED:$failed"
    exit 1
fi
echo "run_coll.sh: all runs passed"
