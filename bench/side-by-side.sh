#!/bin/sh
# side-by-side.sh: podccl (ccl-bench) against Open MPI (mpi-bench) and MPICH (mpich-bench) in the
# same session, same ranks, same sizes, alternating runs, with the memory-bandwidth ceiling (membw)
# measured in the same rounds. Each round runs membw, then for every collective podccl, Open MPI
# and MPICH (the order rotates from round to round), so that drift in the machine's load hits all
# alike. Prints per collective the medians over rounds of the out-of-place busbw and time, the ratio
# podccl / best peer, the ideal busbw from memcpy bandwidth and a summary. With --out DIR (or
# $SIDE_BY_SIDE_OUT) every run also writes its records as JSON (--json, podccl-bench/1) into DIR,
# and bench/plot.py draws DIR/side-by-side-{busbw,lat}-COLL.png from them (medians over rounds,
# the ideal busbw as a dashed line). Exits 1 if any benchmark reported wrong values or failed.
set -u

all_colls="allreduce allgather reducescatter broadcast alltoall reduce"
usage() {
    cat <<EOF
usage: $0 [-np N] [-r rounds] [-b min] [-e max] [-f factor] [-c "colls"] [-n iters] [-w warmup]
          [-t type] [-o op] [--ccl path/to/ccl-bench] [--mpi path/to/mpi-bench]
          [--mpich path/to/mpich-bench] [--membw path/to/membw] [--out DIR]
  --out DIR: write each run's JSON (LIB-COLL-rROUND.json) and the plots
  (side-by-side-busbw-COLL.png, side-by-side-lat-COLL.png) into DIR; default \$SIDE_BY_SIDE_OUT,
  else no JSON and no plots.
  Plots need matplotlib in \$PYTHON, /usr/bin/python3 or python3 (left out with a note if none).
  defaults: -np 2 -r 3 -b 8 -e 64M -f 2 -c "allreduce allgather alltoall" -t float -o sum
  collectives: $all_colls
  binaries: next to this script, else \$BUILD/bench; launchers: \$MPIRUN (mpirun) for Open MPI,
  \$MPIEXEC_MPICH (mpiexec.mpich) for MPICH. Without mpich-bench or mpiexec.mpich, MPICH is left
  out and said so.
EOF
}

np=2 rounds=3 minb=8 maxb=64M step=2 colls="allreduce allgather alltoall" iters="" type=float op=sum
ccl="" mpi="" mpich="" membw="" outdir=${SIDE_BY_SIDE_OUT:-}
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
    -t) type=$2 ;;
    -o) op=$2 ;;
    --ccl) ccl=$2 ;;
    --mpi) mpi=$2 ;;
    --mpich) mpich=$2 ;;
    --membw) membw=$2 ;;
    --out) outdir=$2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$0: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift 2
done
case "$np$rounds" in *[!0-9]*) echo "$0: -np and -r take numbers" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] || { echo "$0: -r needs at least 1" >&2; exit 2; }
[ "$np" -ge 1 ] || { echo "$0: -np needs at least 1" >&2; exit 2; }
for c in $colls; do
    case " $all_colls " in *" $c "*) ;; *) echo "$0: unknown collective '$c' (one of: $all_colls)" >&2; exit 2 ;; esac
done
[ -n "$colls" ] || { echo "$0: -c names no collective" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
find_bin() {
    if [ -x "$here/$1" ]; then echo "$here/$1"
    elif [ -n "${BUILD:-}" ] && [ -x "$BUILD/bench/$1" ]; then echo "$BUILD/bench/$1"
    fi
}
[ -n "$ccl" ] || ccl=$(find_bin ccl-bench)
[ -n "$mpi" ] || mpi=$(find_bin mpi-bench)
[ -n "$membw" ] || membw=$(find_bin membw)
for b in "$ccl" "$mpi" "$membw"; do
    if [ -z "$b" ] || [ ! -x "$b" ]; then
        echo "$0: ccl-bench, mpi-bench or membw not found (use --ccl/--mpi/--membw, or set BUILD)" >&2
        exit 2
    fi
done
mpirun=${MPIRUN:-mpirun}

# MPICH is optional: without it, compare with Open MPI only and say so.
[ -n "$mpich" ] || mpich=$(find_bin mpich-bench)
mpiexec_mpich=${MPIEXEC_MPICH:-mpiexec.mpich}
impls="podccl ompi mpich"
notes=""
if [ -z "$mpich" ] || [ ! -x "$mpich" ]; then
    notes="# MPICH left out: mpich-bench not found (--mpich, or build with MPICH installed)"
    impls="podccl ompi"
elif ! command -v "$mpiexec_mpich" >/dev/null 2>&1; then
    notes="# MPICH left out: launcher '$mpiexec_mpich' not found (set MPIEXEC_MPICH)"
    impls="podccl ompi"
fi
[ "$rounds" -ge 3 ] ||
    notes="$notes${notes:+
}# note: -r $rounds < 3: the medians are not robust against a noisy run"

# More ranks than cores: Open MPI refuses without --oversubscribe, and its busy polling with
# pinned ranks would starve the rank that holds the data, so let it yield and float. MPICH's Hydra
# oversubscribes without being asked; it gets -bind-to none, but its ch4 device has no documented
# setting to yield while polling (MPIR_CVAR_POLLS_BEFORE_YIELD belongs to ch3:nemesis), so it spins.
ncpu=$(nproc 2>/dev/null || echo 1)
# Every rank has a core: all three bind one rank per core (Open MPI's default; podccl's
# ccl-bench -np does the same; MPICH's Hydra is told to).
mpiargs="" mpichargs="-bind-to core"
[ "$(id -u)" = 0 ] && mpiargs="--allow-run-as-root"
if [ "$np" -gt "$ncpu" ]; then
    mpiargs="$mpiargs --oversubscribe --bind-to none --mca mpi_yield_when_idle 1"
    mpichargs="-bind-to none"
    case " $impls " in *" mpich "*)
        note="# np $np > $ncpu cores: MPICH runs with -bind-to none and busy-polls (its ch4 device has no
# documented yield-when-idle setting; MPIR_CVAR_POLLS_BEFORE_YIELD is ch3:nemesis only)"
        notes="$notes${notes:+
}$note" ;;
    esac
fi

if [ -n "$outdir" ]; then
    if ! mkdir -p "$outdir" || [ ! -w "$outdir" ]; then
        echo "$0: cannot write to --out '$outdir'" >&2
        exit 2
    fi
    outdir=$(cd "$outdir" && pwd)
    # the plots read every IMPL-COLL-rN.json there: drop those of an earlier run
    for i in podccl ompi mpich; do rm -f "$outdir/$i"-*-r[0-9]*.json; done
fi

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
: >"$tmp/rows"
: >"$tmp/bw"
: >"$tmp/failures"
sizes="-b $minb -e $maxb -f $step"
common="$sizes -d $type -o $op$iters"

# record_failure WHAT RC ERRFILE CMD...: notes a failed run.
record_failure() {
    what=$1 rc=$2 err=$3
    shift 3
    echo "# FAILED: $what: exit $rc: $*" >>"$tmp/failures"
    tail -n 5 "$err" | sed 's/^/#   /' >>"$tmp/failures"
}

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
        [ "${bad:-0}" != 0 ] && why="$why, ${bad:-no} wrong values"
        echo "# FAILED: $impl $coll round $round: $why: $*" >>"$tmp/failures"
        tail -n 5 "$out.err" | sed 's/^/#   /' >>"$tmp/failures"
    fi
    awk -v c="$coll" -v i="$impl" '!/^#/ && NF >= 9 { print c, $1, i, $6, $8 }' "$out.out" \
        >>"$tmp/rows"
}

# run_impl IMPL COLL ROUND
run_impl() {
    # with --out: the benchmark writes its records to OUT/IMPL-COLL-rROUND.json, labelled
    if [ -n "$outdir" ]; then
        json="$outdir/$1-$2-r$3.json"
        case $1 in
        podccl) set -- "$@" --json "$json" --label podccl ;;
        ompi) set -- "$@" --json "$json" --label "Open MPI" ;;
        mpich) set -- "$@" --json "$json" --label MPICH ;;
        esac
    fi
    impl=$1 coll=$2 round=$3
    shift 3
    # shellcheck disable=SC2086 # word splitting of the option strings is intended
    case $impl in
    podccl) run_one podccl "$coll" "$round" "$ccl" -np "$np" "$coll" $common "$@" ;;
    ompi) run_one ompi "$coll" "$round" "$mpirun" $mpiargs -np "$np" "$mpi" "$coll" $common "$@" ;;
    mpich) run_one mpich "$coll" "$round" "$mpiexec_mpich" $mpichargs -n "$np" "$mpich" "$coll" \
        $common "$@" ;;
    esac
}

r=1
while [ "$r" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    if "$membw" $sizes >"$tmp/membw.$r" 2>"$tmp/membw.$r.err"; then
        awk '!/^#/ && NF >= 3 { print $1, $2, $3 }' "$tmp/membw.$r" >>"$tmp/bw"
    else
        record_failure "membw round $r" $? "$tmp/membw.$r.err" "$membw" $sizes
    fi
    # rotate the order of the implementations by one each round
    order=$impls k=1
    while [ "$k" -lt "$r" ]; do
        # shellcheck disable=SC2086
        set -- $order
        first=$1
        shift
        order="$* $first"
        k=$((k + 1))
    done
    for coll in $colls; do
        for impl in $order; do
            run_impl "$impl" "$coll" "$r"
        done
    done
    r=$((r + 1))
done

peers="Open MPI (mpi-bench)"
case " $impls " in *" mpich "*) peers="$peers and MPICH (mpich-bench)" ;; esac
echo "# side-by-side: podccl (ccl-bench) vs $peers, np=$np, rounds=$rounds, alternating"
echo "# sizes $minb..$maxb x$step, type $type, op $op, out-of-place; medians over rounds"
[ -n "$notes" ] && echo "$notes"
echo "# best = the faster peer at that size; ratio = podccl busbw / best busbw (from the times);"
echo "# time ratio = podccl time / best time; ideal = busbw at the memcpy ceiling (derivation below)"
echo "# (the ideal assumes every rank copies on a core of its own at the one-thread memcpy rate)"
awk -v n="$np" -v idealfile="$tmp/ideal" \
    -v mpich="$(case " $impls " in *" mpich "*) echo 1 ;; *) echo 0 ;; esac)" '
function median(list,   v, m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++)          # insertion sort: mawk has no asort
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    if (m == 0) return -1
    return m % 2 ? v[(m + 1) / 2] + 0 : (v[m / 2] + v[m / 2 + 1]) / 2
}
function fmt(v, f) { return v < 0 ? "-" : sprintf(f, v) }
# memcpy bandwidth (GB/s) measured at the size nearest to s (log scale), -1 if none
function ceiling(s,   i, best, d, bd) {
    best = -1
    for (i = 1; i <= nbw; i++) {
        d = log(s) - log(bwsize[i]); if (d < 0) d = -d
        if (best < 0 || d < bd) { best = i; bd = d }
    }
    return best < 0 ? -1 : bwcp[best]
}
# bytes per rank, in units of S, read (rd) and written (wr): see the derivation printed below
function model(c) {
    q = (n - 1) / n
    if (c == "allreduce") { rd = 1 + q; wr = 1; f = 2 * q
        why[1] = "reduce its 1/n slice from all n contributions (read S, write S/n),"
        why[2] = "then copy the n-1 other reduced slices (read and write (n-1)S/n)" }
    else if (c == "allgather" || c == "alltoall") { rd = q; wr = q; f = q
        why[1] = "copy the n-1 blocks of S/n that come from other ranks (read and write (n-1)S/n);"
        why[2] = "the own block is not counted" }
    else if (c == "reducescatter") { rd = 1; wr = 1 / n; f = q
        why[1] = "reduce its slice of S/n from all n contributions (read S, write S/n)"
        why[2] = "" }
    else if (c == "broadcast") { rd = 1; wr = 1; f = 1
        why[1] = "a non-root rank copies the whole buffer (read S, write S)"
        why[2] = "" }
    else if (c == "reduce") { rd = 1 + q; wr = 1; f = 1
        why[1] = "counted on the root: reduce its slice (read S, write S/n) as in reducescatter,"
        why[2] = "then gather the n-1 slices the others reduced (read and write (n-1)S/n)" }
    ce = (rd + wr) / 2
    k = f / ce                        # ideal busbw = k x memcpy bandwidth
}
FILENAME == ARGV[1] {                 # membw rows: size memcpy sum
    if (!($1 in bwseen)) { bwseen[$1] = ++nbw; bwsize[nbw] = $1 }
    i = bwseen[$1]; cpl[i] = cpl[i] " " $2; suml[i] = suml[i] " " $3
    next
}
{
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[$1] = order[$1] " " $2 }
    if (!($1 in cseen)) { cseen[$1] = 1; colls[++ncoll] = $1 }
    t[key, $3] = t[key, $3] " " $4
    bw[key, $3] = bw[key, $3] " " $5
}
END {
    printf "#\n# ceiling: membw, one thread, medians over rounds\n"
    printf "# %10s  %12s  %12s\n", "size(B)", "memcpy(GB/s)", "sum(GB/s)"
    for (i = 1; i <= nbw; i++) {
        bwcp[i] = median(cpl[i])
        s = median(suml[i])
        printf "  %10s  %12s  %12s\n", bwsize[i], fmt(bwcp[i], "%.2f"), fmt(s, "%.2f")
    }
    if (nbw == 0) printf "  (membw gave no rows: ideal columns are -)\n"
    for (kc = 1; kc <= ncoll; kc++) {
        c = colls[kc]
        model(c)
        printf "#\n# %s\n", c
        printf "# %10s  %8s  %8s  %8s  %6s  %8s  %6s  %10s  %10s  %5s  %6s\n", "size(B)", \
            "podccl", "OMPI", "MPICH", "ratio", "ideal", "%ideal", "podccl", "best", "best", "time"
        printf "# %10s  %8s  %8s  %8s  %6s  %8s  %6s  %10s  %10s  %5s  %6s\n", "", \
            "busbw", "busbw", "busbw", "", "busbw", "", "time(us)", "time(us)", "peer", "ratio"
        r1m = r64k = tsmall = pmin = -1
        m = split(order[c], sizes, " ")
        for (i = 1; i <= m; i++) {
            s = sizes[i]; key = c SUBSEP s
            tp = median(t[key, "podccl"]); to = median(t[key, "ompi"]); tm = median(t[key, "mpich"])
            bp = median(bw[key, "podccl"]); bo = median(bw[key, "ompi"]); bm = median(bw[key, "mpich"])
            tb = to; pb = "OMPI"
            if (tm >= 0 && (tb < 0 || tm < tb)) { tb = tm; pb = "MPICH" }
            if (tb < 0) pb = "-"
            # busbw ratio from the times (same bytes and factor): exact even where the printed
            # busbw rounds to 0.00.
            rb = (tp > 0 && tb >= 0) ? tb / tp : -1
            rt = (tp >= 0 && tb > 0) ? tp / tb : -1
            cp = ceiling(s)
            ideal = cp > 0 ? k * cp : -1
            pct = (ideal > 0 && tp > 0) ? 100 * (s / tp / 1000 * f) / ideal : -1
            printf "  %10s  %8s  %8s  %8s  %6s  %8s  %6s  %10s  %10s  %5s  %6s\n", s, \
                fmt(bp, "%.2f"), fmt(bo, "%.2f"), mpich ? fmt(bm, "%.2f") : "-", fmt(rb, "%.2f"), \
                fmt(ideal, "%.2f"), fmt(pct, "%.0f"), fmt(tp, "%.2f"), fmt(tb, "%.2f"), pb, \
                fmt(rt, "%.2f")
            if (rb >= 0 && s + 0 >= 1048576 && (r1m < 0 || rb < r1m)) r1m = rb
            if (rb >= 0 && s + 0 >= 65536 && (r64k < 0 || rb < r64k)) r64k = rb
            if (rt >= 0 && s + 0 <= 256 && (tsmall < 0 || rt > tsmall)) tsmall = rt
            if (pct >= 0 && s + 0 >= 1048576 && (pmin < 0 || pct < pmin)) pmin = pct
            if (ideal > 0) lastideal = ideal
        }
        if (lastideal > 0) printf "%s=%.3f\n", c, lastideal > idealfile
        lastideal = -1
        printf "# ideal, per rank, n = %d, S = size: %s\n", n, why[1]
        if (why[2] != "") printf "#   %s\n", why[2]
        printf "#   read %.4g S, write %.4g S; copy-equivalent (read + write) / 2 = %.4g S;\n", \
            rd, wr, ce
        printf "#   ideal time = %.4g S / memcpy(S); algbw = memcpy / %.4g; x busbw factor %.4g\n", \
            ce, ce, f
        printf "#   => ideal busbw = %.4g x memcpy bandwidth at the nearest membw size\n", k
        sum[kc] = sprintf("  %-14s  %10s  %10s  %10s  %12s", c, fmt(r1m, "%.2f"), \
            fmt(r64k, "%.2f"), fmt(tsmall, "%.2f"), fmt(pmin, "%.0f"))
    }
    printf "#\n# summary: busbw ratio podccl / best peer (> 1: podccl faster), time ratio (< 1: faster)\n"
    printf "# %-14s  %10s  %10s  %10s  %12s\n", "collective", "min ratio", "min ratio", \
        "max time", "min %ideal"
    printf "# %-14s  %10s  %10s  %10s  %12s\n", "", ">= 1 MiB", ">= 64 KiB", "ratio<=256B", \
        ">= 1 MiB"
    for (kc = 1; kc <= ncoll; kc++) print sum[kc]
}' "$tmp/bw" "$tmp/rows"

# plots from the JSON files: one line per library (medians over rounds), the ideal busbw at the
# largest size as the dashed ceiling
if [ -n "$outdir" ]; then
    py=""
    for p in ${PYTHON:-} /usr/bin/python3 python3; do
        if "$p" -c 'import matplotlib' 2>/dev/null; then py=$p; break; fi
    done
    plot=${PLOT:-$here/plot.py}
    set --
    for c in $colls; do
        for f in "$outdir"/*-"$c"-r*.json; do [ -f "$f" ] && set -- "$@" "$f"; done
    done
    echo "#"
    for i in $impls; do
        for c in $colls; do
            [ -f "$outdir/$i-$c-r1.json" ] || echo "# note: $i wrote no $outdir/$i-$c-r1.json"
        done
    done
    if [ $# -eq 0 ]; then
        echo "# no JSON files in $outdir (do the benchmarks take --json?): no plots"
    elif [ -z "$py" ]; then
        echo "# JSON in $outdir; plots left out: no python3 with matplotlib"
        echo "# (apt-get install python3-matplotlib, or set PYTHON)"
    elif [ ! -f "$plot" ]; then
        echo "# JSON in $outdir; plots left out: $plot not found (set PLOT)"
    else
        if [ -s "$tmp/ideal" ]; then
            while IFS= read -r ce; do set -- --ceiling "$ce" "$@"; done <"$tmp/ideal"
        fi
        echo "# JSON in $outdir; plots:"
        if ! "$py" "$plot" -o "$outdir/side-by-side" "$@" >"$tmp/plot.out" 2>"$tmp/plot.err"; then
            echo "# FAILED: plot: $py $plot -o $outdir/side-by-side ..." >>"$tmp/failures"
            tail -n 5 "$tmp/plot.err" | sed 's/^/#   /' >>"$tmp/failures"
        fi
        sed 's/^/#   /' "$tmp/plot.out"
    fi
fi

if [ -s "$tmp/failures" ]; then
    echo "#"
    cat "$tmp/failures"
    exit 1
fi
echo "# all results checked: OK"
exit 0
