#!/bin/sh
# Runs test_mpi under mpirun with 3 and 4 ranks: podccl's results against MPI's, bit for bit.
# Exits 77 (automake's SKIP) with a reason when mpirun or test_mpi is missing.
set -u
dir=$(dirname "$0")
mpirun=${MPIRUN:-mpirun}
if [ "$mpirun" = no ] || ! command -v "$mpirun" >/dev/null 2>&1; then
    echo "run_mpi.sh: SKIP: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
if [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/tests/test_mpi" ]; then
    bin=$top_builddir/tests/test_mpi
elif [ -x "$dir/test_mpi" ]; then
    bin=$dir/test_mpi
else
    echo "run_mpi.sh: SKIP: test_mpi not built (configure found no MPI)"
    exit 77
fi

flags=""
if "$mpirun" --version 2>&1 | grep -q "Open MPI"; then
    flags="--oversubscribe -x PODCCL_COMM_ID -x PODCCL_TIMEOUT"
    [ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
fi
# A rendezvous port for podccl's root (rank 0): derived from our pid, skipping ports in use.
port=$((20000 + $$ % 20000))
while command -v ss >/dev/null 2>&1 && ss -Hltn 2>/dev/null | grep -q ":$port "; do
    port=$((port + 1))
done

failed=""
for np in 3 4; do
    export PODCCL_COMM_ID="127.0.0.1:$port" PODCCL_TIMEOUT="${PODCCL_TIMEOUT:-30}"
    echo "+ PODCCL_COMM_ID=$PODCCL_COMM_ID $mpirun $flags -np $np $bin"
    # shellcheck disable=SC2086
    timeout 600 "$mpirun" $flags -np $np "$bin" || failed="$failed np=$np"
    port=$((port + 1))
done
if [ -n "$failed" ]; then
    echo "run_mpi.sh: FAILED:$failed"
    exit 1
fi
echo "run_mpi.sh: all runs passed"
