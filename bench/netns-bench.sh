#!/bin/bash
# netns-bench.sh: podccl (ccl-bench, network transport) against Open MPI (mpi-bench, TCP BTL)
# across hosts made of Linux network namespaces on this machine, optionally with every host's
# link shaped to a rate by tc tbf (a full-duplex NIC of that rate; see tests/netns/lib.sh). Both
# run in the same namespaces, in the same session, alternating: each round runs, for every
# collective, podccl and Open MPI, the order swapping from round to round, so that drift in the
# machine's load hits both alike. Prints per collective a markdown table of the medians over
# rounds: size, podccl busbw, Open MPI busbw, ratio (podccl / Open MPI, from the times), the
# times, and with a rate podccl's busbw as % of the link rate. Exits 1 if a run failed or
# reported wrong values, 2 on bad usage, 77 if namespaces can't be made here (needs root).
set -u

all_colls="allreduce allgather reducescatter broadcast alltoall reduce"
usage() {
    cat <<EOF
usage: $0 [-hosts H] [-ppn P] [-rate RATE|none] [-r rounds] [-launch env|mpirun]
          [-b min] [-e max] [-f factor] [-n iters] [-w warmup] [-c "colls"] [-t type] [-o op]
          [--ccl path/to/ccl-bench] [--mpi path/to/mpi-bench]
  defaults: -hosts 2 -ppn 1 -rate 1gbit -r 3 -launch env -b 1M -e 64M -f 4
            -c "allreduce allgather alltoall" -t float -o sum (-n, -w: the benchmarks' defaults)
  -rate: tc units (100mbit, 1gbit, 10gbit) for every host's link in both directions; none: the
         veth links unshaped (memory-speed, limited by the CPU)
  -launch: how podccl's ranks start: env = one process per rank with PODCCL_RANK/NRANKS/COMM_ID
           (podccl's own bootstrap), mpirun = Open MPI's mpirun across the namespaces
  collectives: $all_colls
  podccl runs with PODCCL_NET=\${PODCCL_NET:-ofi} (PODCCL_OFI_PROVIDER and other PODCCL_*, FI_*
  variables pass through); Open MPI with --mca btl tcp,self --mca pml ob1 over the test links.
  binaries: next to this script, else \$BUILD/bench; launcher \$MPIRUN (mpirun), Open MPI only.
  Needs root (network namespaces); runs ranks on this machine's cores, all hosts sharing them.
EOF
}

hosts=2 ppn=1 rate=1gbit rounds=3 launch=env minb=1M maxb=64M step=4 iters=""
colls="allreduce allgather alltoall" type=float op=sum ccl="" mpi=""
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || case $1 in -h | --help) ;; *) echo "$0: $1 needs a value" >&2; exit 2 ;; esac
    case $1 in
    -hosts) hosts=$2 ;;
    -ppn) ppn=$2 ;;
    -rate) rate=$2 ;;
    -r) rounds=$2 ;;
    -launch) launch=$2 ;;
    -b) minb=$2 ;;
    -e) maxb=$2 ;;
    -f) step=$2 ;;
    -n | -w) iters="$iters $1 $2" ;;
    -c) colls=$2 ;;
    -t) type=$2 ;;
    -o) op=$2 ;;
    --ccl) ccl=$2 ;;
    --mpi) mpi=$2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$0: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift 2
done
case "$hosts$ppn$rounds" in *[!0-9]* | "") echo "$0: -hosts, -ppn and -r take numbers" >&2; exit 2 ;; esac
[ "$hosts" -ge 2 ] || { echo "$0: -hosts needs at least 2" >&2; exit 2; }
[ "$ppn" -ge 1 ] && [ "$rounds" -ge 1 ] || { echo "$0: -ppn and -r need at least 1" >&2; exit 2; }
case $launch in env | mpirun) ;; *) echo "$0: -launch env or mpirun" >&2; exit 2 ;; esac
for c in $colls; do
    case " $all_colls " in *" $c "*) ;; *) echo "$0: unknown collective '$c' (one of: $all_colls)" >&2; exit 2 ;; esac
done
[ -n "$colls" ] || { echo "$0: -c names no collective" >&2; exit 2; }
[ "$rate" = none ] && rate=""

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
# The namespace helpers: in the source tree next to bench/, or installed under share/podccl.
lib=""
for d in "${PODCCL_NETNS_LIB:-}" "$here/../tests/netns" "$here/../share/podccl/netns"; do
    [ -n "$d" ] && [ -f "$d/lib.sh" ] && [ -x "$d/rsh-agent.sh" ] && { lib=$d; break; }
done
[ -n "$lib" ] || { echo "$0: tests/netns/lib.sh not found (set PODCCL_NETNS_LIB to its folder)" >&2; exit 2; }
# shellcheck source=../tests/netns/lib.sh
. "$lib/lib.sh"
netns_have_mpirun || { echo "$0: Open MPI's mpirun not found (MPIRUN=${MPIRUN:-mpirun})" >&2; exit 2; }

nr=$((hosts * ppn))
ncpu=$(nproc 2>/dev/null || echo 1)
export PODCCL_NET=${PODCCL_NET:-ofi} PODCCL_SOCKET_IFNAME=${PODCCL_SOCKET_IFNAME:-eth0}
unset PODCCL_RANK PODCCL_NRANKS PODCCL_COMM_ID PODCCL_HOSTID
# A run that hangs is cut off after this many seconds (it counts as failed).
limit=${NETNS_BENCH_LIMIT:-600}

tmp=$(mktemp -d /tmp/netns-bench.XXXXXX) || exit 2
netns_atexit "rm -rf '$tmp'"
netns_up "$hosts" "$rate" || { echo "$0: could not set up the namespaces" >&2; exit 2; }
slots=()
for ((h = 0; h < hosts; h++)); do slots[h]=$ppn; done
# Open MPI yields the core while it polls: every namespace host runs on this machine's cores,
# which also carry the kernel's side of every link (veth, bridge, tbf's timer), and ranks that
# spin starve it (measured at 1gbit, 2 ranks on 2 cores: all-gather 4 MiB 0.06 GB/s busbw
# spinning, 0.07 yielding; with more ranks than cores spinning also starves the other ranks).
NETNS_MPIRUN_EXTRA="--mca mpi_yield_when_idle 1 ${NETNS_MPIRUN_EXTRA:-}"
# podccl likewise: its automatic spin count (2000 polls before yielding while every rank of the
# machine has a core) leaves the kernel's side of the links no core of its own here, so it gets
# the value it picks when ranks outnumber cores. Measured with other work on
# the machine: all-reduce 8 MiB unshaped 2.0 GB/s with 20, 1.0 GB/s with 2000 (8 B: 37 vs 11 us,
# with 2000 spikes to 0.8 ms). A PODCCL_SHM_SPIN in the environment wins.
export PODCCL_SHM_SPIN=${PODCCL_SHM_SPIN:-20}
netns_mpirun "$tmp/hostfile" "${slots[@]}"
fwd=()
for v in $(env | sed -n 's/^\(PODCCL_[A-Z0-9_]*\|FI_[A-Z0-9_]*\)=.*/\1/p'); do fwd+=(-x "$v"); done

: >"$tmp/rows"
: >"$tmp/failures"
common=(-b "$minb" -e "$maxb" -f "$step" -d "$type" -o "$op")
# shellcheck disable=SC2206
[ -z "$iters" ] || common+=($iters)
port=$((30000 + $$ % 20000))

# run_podccl OUT ERR COLL: one podccl run; stdout of rank 0 to OUT, everyone's stderr to ERR.
run_podccl() {
    local out=$1 err=$2 coll=$3 r h pids=() rc=0 deadline
    port=$((port + 1))
    local commid=${NETNS_ADDR[0]}:$port
    if [ "$launch" = mpirun ]; then
        timeout -k 5 "$limit" "${NETNS_MPIRUN[@]}" "${fwd[@]}" -x PODCCL_COMM_ID="$commid" \
            -np "$nr" "$ccl" "$coll" "${common[@]}" >"$out" 2>"$err" &
        netns_track $!
        netns_wait $!
        return $?
    fi
    for ((r = 0; r < nr; r++)); do
        h=$((r / ppn))
        netns_cmd "$h"
        "${NETNS_CMD[@]}" env PODCCL_RANK=$r PODCCL_NRANKS=$nr PODCCL_COMM_ID="$commid" \
            "$ccl" "$coll" "${common[@]}" >"$out.$r" 2>>"$err" &
        pids[r]=$!
    done
    deadline=$(($(date +%s) + limit))
    for ((r = 0; r < nr; r++)); do
        while kill -0 "${pids[r]}" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
        kill -0 "${pids[r]}" 2>/dev/null && { kill -9 "${pids[r]}"; echo "rank $r: killed after $limit s" >>"$err"; }
        wait "${pids[r]}" || rc=$?
    done
    mv "$out.0" "$out"
    rm -f "$out".*
    return $rc
}

# run_one IMPL COLL ROUND: runs one benchmark, appends "coll size impl time busbw" to rows.
run_one() {
    local impl=$1 coll=$2 round=$3 out err rc bad why
    out=$tmp/$impl.$coll.$round.out
    err=$tmp/$impl.$coll.$round.err
    : >"$err"
    if [ "$impl" = podccl ]; then
        run_podccl "$out" "$err" "$coll"
    else
        timeout -k 5 "$limit" "${NETNS_MPIRUN[@]}" -np "$nr" "$mpi" "$coll" "${common[@]}" \
            >"$out" 2>"$err" &
        netns_track $!
        netns_wait $!
    fi
    rc=$?
    bad=$(awk '/^# Out of bounds values/ { print $7 }' "$out")
    if [ $rc -ne 0 ] || [ "${bad:-x}" != 0 ]; then
        why="exit $rc"
        [ "${bad:-0}" != 0 ] && why="$why, ${bad:-no} wrong values"
        echo "# FAILED: $impl $coll round $round: $why" >>"$tmp/failures"
        tail -n 5 "$err" | sed 's/^/#   /' >>"$tmp/failures"
    fi
    awk -v c="$coll" -v i="$impl" '!/^#/ && NF >= 9 { print c, $1, i, $6, $8 }' "$out" >>"$tmp/rows"
    [ -s "$tmp/header.$impl" ] || grep '^# \(transport\|MPI\|podccl version\|nranks\)' "$out" >"$tmp/header.$impl"
}

for ((r = 1; r <= rounds; r++)); do
    if [ $((r % 2)) = 1 ]; then order="podccl ompi"; else order="ompi podccl"; fi
    for coll in $colls; do
        for impl in $order; do
            echo "# round $r/$rounds: $impl $coll" >&2
            run_one "$impl" "$coll" "$r"
        done
    done
done

echo "# netns-bench: podccl (ccl-bench, PODCCL_NET=$PODCCL_NET, PODCCL_SHM_SPIN=$PODCCL_SHM_SPIN, launched by $launch) vs Open MPI (mpi-bench, btl tcp,self, pml ob1, mpi_yield_when_idle 1)"
echo "# $hosts hosts (network namespaces) x $ppn ranks = $nr ranks on $ncpu cores; rounds=$rounds, alternating"
if [ -n "$rate" ]; then
    echo "# links: tc tbf rate $rate both directions (burst $NETNS_BURST B, queue $NETNS_LIMIT B) = $(awk -v b="$NETNS_RATE_BPS" 'BEGIN { printf "%.4g", b / 8e9 }') GB/s per direction"
else
    echo "# links: veth through a bridge, unshaped"
fi
echo "# sizes $minb..$maxb x$step, type $type, op $op, out-of-place; medians over rounds"
sed 's/^# /# podccl: /' "$tmp/header.podccl" 2>/dev/null
sed 's/^# /# ompi:   /' "$tmp/header.ompi" 2>/dev/null
echo "# busbw (GB/s = 1e9 B/s) from the median time, nccl-tests factors; ratio = podccl busbw / OMPI busbw, from the median times (> 1: podccl faster)"
[ -n "$rate" ] && echo "# %link = podccl busbw / link rate (with -ppn > 1 the ranks of a host share its link)"
[ "$rounds" -ge 3 ] || echo "# note: -r $rounds < 3: the medians are not robust against a noisy run"
awk -v n="$nr" -v link="$(awk -v b="$NETNS_RATE_BPS" 'BEGIN { print b / 8e9 }')" '
function median(list,   v, m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    if (m == 0) return -1
    return m % 2 ? v[(m + 1) / 2] + 0 : (v[m / 2] + v[m / 2 + 1]) / 2
}
function fmt(v, f) { return v < 0 ? "-" : sprintf(f, v) }
{
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[$1] = order[$1] " " $2 }
    if (!($1 in cseen)) { cseen[$1] = 1; colls[++ncoll] = $1 }
    t[key, $3] = t[key, $3] " " $4
    bw[key, $3] = bw[key, $3] " " $5
}
END {
    for (kc = 1; kc <= ncoll; kc++) {
        c = colls[kc]
        # busbw from the median time (the printed busbw is rounded to 0.01 GB/s)
        f = c == "allreduce" ? 2 * (n - 1) / n : (c == "broadcast" || c == "reduce") ? 1 : (n - 1) / n
        printf "\n### %s\n\n", c
        if (link > 0) {
            print "| size (B) | podccl busbw (GB/s) | OMPI busbw (GB/s) | ratio | podccl time (us) | OMPI time (us) | podccl %link |"
            print "|---:|---:|---:|---:|---:|---:|---:|"
        } else {
            print "| size (B) | podccl busbw (GB/s) | OMPI busbw (GB/s) | ratio | podccl time (us) | OMPI time (us) |"
            print "|---:|---:|---:|---:|---:|---:|"
        }
        m = split(order[c], sizes, " ")
        for (i = 1; i <= m; i++) {
            s = sizes[i]; key = c SUBSEP s
            tp = median(t[key, "podccl"]); to = median(t[key, "ompi"])
            bp = tp > 0 ? s / tp / 1000 * f : -1; bo = to > 0 ? s / to / 1000 * f : -1
            rb = (tp > 0 && to > 0) ? to / tp : -1
            line = sprintf("| %s | %s | %s | %s | %s | %s |", s, fmt(bp, "%.3f"), fmt(bo, "%.3f"),
                           fmt(rb, "%.2f"), fmt(tp, "%.1f"), fmt(to, "%.1f"))
            if (link > 0) line = line sprintf(" %s |", fmt(bp >= 0 ? 100 * bp / link : -1, "%.0f"))
            print line
        }
    }
}' "$tmp/rows"

if [ -s "$tmp/failures" ]; then
    echo
    cat "$tmp/failures"
    exit 1
fi
echo
echo "# all results checked: OK"
exit 0
