#!/bin/sh
# side-by-side.sh: podccl (ccl-bench) against Open MPI (mpi-bench) in the same session, same ranks,
# same sizes, alternating runs (podccl, MPI, podccl, MPI, ...) so that drift in the machine's load
# hits both alike. Prints per collective the median over rounds of the out-of-place busbw and time,
# and the ratio podccl / MPI. Exits 1 if either benchmark reported wrong values or failed.
set -u

usage() {
    cat <<EOF
usage: $0 [-np N] [-r rounds] [-b min] [-e max] [-f factor] [-c "colls"] [-n iters] [-w warmup]
          [--ccl path/to/ccl-bench] [--mpi path/to/mpi-bench]
  defaults: -np 2 -r 3 -b 8 -e 64M -f 2 -c "allreduce allgather alltoall"; type float, op sum
  binaries: next to this script, else \$BUILD/bench
EOF
}

np=2 rounds=3 minb=8 maxb=64M step=2 colls="allreduce allgather alltoall" iters="" ccl="" mpi=""
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || case $1 in -h | --help) ;; *) echo "$0: $1 needs a value" >&2; exit 2 ;; esac
    case $1 in
    -np) np=$2 ;;
    -r) rounds=$2 ;;
    -b) minb=$2 ;;
    -e) maxb=$2 ;;
    -f) step=$2 ;;
    -c) colls=$2 ;;
    -n | -w) iters="$iters $1 $2" ;;
    --ccl) ccl=$2 ;;
    --mpi) mpi=$2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$0: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift 2
done
case "$np$rounds" in *[!0-9]*) echo "$0: -np and -r take numbers" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
find_bin() {
    if [ -x "$here/$1" ]; then echo "$here/$1"
    elif [ -n "${BUILD:-}" ] && [ -x "$BUILD/bench/$1" ]; then echo "$BUILD/bench/$1"
    fi
}
[ -n "$ccl" ] || ccl=$(find_bin ccl-bench)
[ -n "$mpi" ] || mpi=$(find_bin mpi-bench)
for b in "$ccl" "$mpi"; do
    if [ -z "$b" ] || [ ! -x "$b" ]; then
        echo "$0: ccl-bench or mpi-bench not found (use --ccl/--mpi, or set BUILD)" >&2
        exit 2
    fi
done
mpirun=${MPIRUN:-mpirun}

# More ranks than cores: Open MPI refuses without --oversubscribe, and its busy polling with
# pinned ranks would starve the rank that holds the data, so let it yield and float.
ncpu=$(nproc 2>/dev/null || echo 1)
mpiargs=""
[ "$(id -u)" = 0 ] && mpiargs="--allow-run-as-root"
[ "$np" -gt "$ncpu" ] && mpiargs="$mpiargs --oversubscribe --bind-to none --mca mpi_yield_when_idle 1"

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
: >"$tmp/rows"
: >"$tmp/failures"
common="-b $minb -e $maxb -f $step -d float -o sum$iters"

# run_one IMPL COLL ROUND CMD...: runs one benchmark, appends its rows as
# "coll size impl time busbw" to rows, and any failure to failures.
run_one() {
    impl=$1 coll=$2 round=$3
    shift 3
    out="$tmp/$impl.$coll.$round"
    "$@" >"$out.out" 2>"$out.err"
    rc=$?
    bad=$(awk '/^# Out of bounds values/ { print $7 }' "$out.out")
    if [ $rc -ne 0 ] || [ "${bad:-x}" != 0 ]; then
        why="exit $rc"
        [ "${bad:-0}" != 0 ] && why="$why, $bad wrong values"
        echo "# FAILED: $impl $coll round $round: $why: $*" >>"$tmp/failures"
        tail -n 5 "$out.err" | sed 's/^/#   /' >>"$tmp/failures"
    fi
    awk -v c="$coll" -v i="$impl" '!/^#/ && NF >= 9 { print c, $1, i, $6, $8 }' "$out.out" \
        >>"$tmp/rows"
}

for coll in $colls; do
    r=1
    while [ "$r" -le "$rounds" ]; do
        # shellcheck disable=SC2086 # word splitting of the option strings is intended
        run_one podccl "$coll" "$r" "$ccl" -np "$np" "$coll" $common
        # shellcheck disable=SC2086
        run_one mpi "$coll" "$r" "$mpirun" $mpiargs -np "$np" "$mpi" "$coll" $common
        r=$((r + 1))
    done
done

echo "# side-by-side: podccl (ccl-bench) vs Open MPI (mpi-bench), np=$np, rounds=$rounds, alternating"
echo "# sizes $minb..$maxb x$step, type float, op sum, out-of-place; medians over rounds"
echo "# busbw ratio = podccl busbw / MPI busbw; time ratio = podccl time / MPI time"
awk '
function median(list,   v, n, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++)          # insertion sort: mawk has no asort
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    if (n == 0) return -1
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function ratio(a, b) { return (a < 0 || b <= 0) ? "-" : sprintf("%.2f", a / b) }
{
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[$1] = order[$1] " " $2 }
    if (!($1 in cseen)) { cseen[$1] = 1; colls[++ncoll] = $1 }
    t[key, $3] = t[key, $3] " " $4
    bw[key, $3] = bw[key, $3] " " $5
}
END {
    for (k = 1; k <= ncoll; k++) {
        c = colls[k]
        printf "#\n# %s\n", c
        printf "# %10s  %12s  %12s  %6s  %14s  %14s  %6s\n", "size(B)", "podccl busbw", \
            "MPI busbw", "ratio", "podccl time", "MPI time", "ratio"
        printf "# %10s  %12s  %12s  %6s  %14s  %14s  %6s\n", "", "(GB/s)", "(GB/s)", "", \
            "(us)", "(us)", ""
        n = split(order[c], sizes, " ")
        for (i = 1; i <= n; i++) {
            key = c SUBSEP sizes[i]
            tp = median(t[key, "podccl"]); tm = median(t[key, "mpi"])
            bp = median(bw[key, "podccl"]); bm = median(bw[key, "mpi"])
            # busbw ratio from the times (same bytes and factor): exact even where the printed
            # busbw rounds to 0.00.
            printf "  %10s  %12s  %12s  %6s  %14s  %14s  %6s\n", sizes[i], \
                bp < 0 ? "-" : sprintf("%.2f", bp), bm < 0 ? "-" : sprintf("%.2f", bm), \
                ratio(tm, tp), tp < 0 ? "-" : sprintf("%.2f", tp), \
                tm < 0 ? "-" : sprintf("%.2f", tm), ratio(tp, tm)
        }
    }
}' "$tmp/rows"

if [ -s "$tmp/failures" ]; then
    echo "#"
    cat "$tmp/failures"
    exit 1
fi
echo "# all results checked: OK"
exit 0
