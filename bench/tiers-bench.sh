#!/bin/bash
# tiers-bench.sh: podccl on a two-tier cluster of namespace hosts (tests/netns/tiers.sh: cabinets
# of hosts on fast links, one slow spine rail per host between cabinets), against Open MPI, side
# by side. Each round runs, for every collective, podccl with its automatic choice (the topology
# file in PODCCL_TOPO_FILE), podccl with each forced plan (ccl-bench -A PLAN), Open MPI's default
# collectives (tuned) and Open MPI's hierarchical ones (HAN), in an order that rotates from round
# to round, so that drift in the machine's load hits all alike. Prints per collective a markdown
# table of medians over rounds: busbw of each, ratios auto/tuned and auto/HAN, the link bound,
# and auto's time over the best forced plan's; then the bytes each podccl plan put on every
# host's two links for one call at the largest size. -latency instead times small all-reduces
# on 8 unshaped hosts, podccl against Open MPI.
#
# Exits 1 if podccl's automatic choice or Open MPI tuned failed or reported wrong values, or a
# forced plan reported wrong values (a plan or HAN that fails to run is n/a, said so, not a
# failure), 2 on bad usage, 77 if namespaces can't be made here (needs root).
#
# Runtime on this 2-core machine: about 25 minutes with the defaults (2x2x2, 1gbit/250mbit, four
# collectives 1M..64M, plans ring,hier,rhd plus Open MPI tuned and HAN, 3 rounds of -n 1 -w 1:
# ~9 minutes for round 1, which also checks, ~6 for each other, ~3 of link counting; measured:
# one checked round of all-reduce alone 7 minutes at -n 2), dominated by the 64 MiB calls over
# the 250mbit rails (3-7 s each); "-e 16M" takes about a quarter of that. -latency: 1 minute.
set -u

all_colls="allreduce allgather reducescatter broadcast alltoall reduce"
usage() {
    cat <<EOF
usage: $0 [-layout L] [-cab RATE] [-spine RATE] [-place block|rr] [-plans "p,q"] [-ompi "tuned han"]
          [-r rounds] [-b min] [-e max] [-f factor] [-n iters] [-w warmup] [-c "colls"]
          [-t type] [-o op] [-check 0|1] [-links 0|1] [--ccl path] [--mpi path] [-out DIR]
       $0 -latency [-layout L] [-r rounds] [-n iters] [-w warmup] [-ompi "tuned han"]
  defaults: -layout 2x2x2 -cab 1gbit -spine 250mbit -place block -plans ring,hier,rhd
            -ompi "tuned han" -r 3 -b 1M -e 64M -f 4 -n 1 -w 1 -c "$def_colls"
            -t float -o sum -check 1 -links 1
  -layout: CxHxP (C cabinets of H hosts of P ranks) or ranks per host, ',' between hosts and
           '|' between cabinets: "3,1|2,2" (quote it); hosts numbered cabinet by cabinet
  -cab, -spine: tc rates (250mbit, 1gbit) of every cabinet link and every spine rail, both
           directions; none = unshaped
  -place: block = a host's ranks are consecutive (0,1 on host 0, ...); rr = round robin over the
          hosts (rank r on the r-th host with a free slot in turn; Open MPI: --map-by node)
  -plans: podccl plans forced one after the other (ccl-bench -A PLAN); "" = none. A plan that
          does not run is n/a in the tables
  -ompi: Open MPI variants: tuned (its default collectives, --mca coll ^han) and han
         (--mca coll_han_priority 100, simple all-reduce); none = podccl only
  -check 1: ccl-bench/mpi-bench check results (-c 1) in round 1 (every run, size and plan is
            checked once; later rounds time only); 0: never
  -links 1: afterwards, one call of each podccl plan at the largest size per collective, with
            the bytes every host's cabinet link and spine rail carried
  -out DIR: each run also writes its rows as JSON (ccl-bench/mpi-bench --json:
           IMPL-COLL-rROUND.json, labelled "podccl auto", "podccl PLAN", "Open MPI VARIANT"), and
           bench/plot.py draws DIR/tiers-{busbw,lat}-COLL.png from them (medians over rounds;
           left out with a note without python3-matplotlib)
  -latency: 8 hosts x 1 rank (default layout 2x4x1), links unshaped unless -cab/-spine say
            otherwise, all-reduce of 8 B, 1 KiB and 64 KiB: time of podccl auto and Open MPI
            (default -n 100 -w 10)
  collectives: $all_colls
  podccl: PODCCL_NET=\${PODCCL_NET:-ofi}, PODCCL_SOCKET_IFNAME=eth0, PODCCL_SHM_SPIN=20 unless
  set (PODCCL_OFI_PROVIDER, FI_* pass through); Open MPI: --mca btl tcp,self --mca pml ob1 over
  the cabinet subnets, mpi_yield_when_idle 1. Binaries next to this script, else \$BUILD/bench;
  launcher \$MPIRUN (mpirun, Open MPI). Needs root (network namespaces).
EOF
}

def_colls="allreduce allgather reducescatter alltoall"
layout="" cab=1gbit spine=250mbit cab_set=0 spine_set=0 place=block plans="ring,hier,rhd"
# -n 1: a 64 MiB call over the rails takes seconds, so one timed call per size and round is
# long enough to time, and the medians over rounds take out the noise.
ompi="tuned han" rounds=3 minb=1M maxb=64M step=4 iters=1 warm=1 colls=$def_colls type=float
op=sum check=1 links=1 ccl="" mpi="" latency=0 iters_set=0 warm_set=0 outdir=""
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help) usage; exit 0 ;;
    -latency) latency=1; shift; continue ;;
    esac
    [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
    case $1 in
    -layout) layout=$2 ;;
    -cab) cab=$2 cab_set=1 ;;
    -spine) spine=$2 spine_set=1 ;;
    -place) place=$2 ;;
    -plans) plans=$2 ;;
    -ompi) ompi=$2 ;;
    -r) rounds=$2 ;;
    -b) minb=$2 ;;
    -e) maxb=$2 ;;
    -f) step=$2 ;;
    -n) iters=$2 iters_set=1 ;;
    -w) warm=$2 warm_set=1 ;;
    -c) colls=$2 ;;
    -t) type=$2 ;;
    -o) op=$2 ;;
    -check) check=$2 ;;
    -links) links=$2 ;;
    --ccl) ccl=$2 ;;
    --mpi) mpi=$2 ;;
    -out) outdir=$2 ;;
    *) echo "$0: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift 2
done
if [ $latency = 1 ]; then
    # Small messages: links unshaped (the time is the software's), all-reduce only.
    [ -n "$layout" ] || layout=2x4x1
    [ $cab_set = 1 ] || cab=none
    [ $spine_set = 1 ] || spine=none
    [ $iters_set = 1 ] || iters=100
    [ $warm_set = 1 ] || warm=10
    colls=allreduce minb=8 maxb=64K step=2 plans="" links=0
fi
[ -n "$layout" ] || layout=2x2x2
case "$rounds$iters$warm" in *[!0-9]* | "") echo "$0: -r, -n and -w take numbers" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] && [ "$iters" -ge 1 ] || { echo "$0: -r and -n need at least 1" >&2; exit 2; }
case $place in block | rr) ;; *) echo "$0: -place block or rr" >&2; exit 2 ;; esac
case $check$links in [01][01]) ;; *) echo "$0: -check and -links take 0 or 1" >&2; exit 2 ;; esac
for c in $colls; do
    case " $all_colls " in *" $c "*) ;; *) echo "$0: unknown collective '$c' (one of: $all_colls)" >&2; exit 2 ;; esac
done
[ -n "$colls" ] || { echo "$0: -c names no collective" >&2; exit 2; }
if [ -n "$outdir" ]; then
    mkdir -p "$outdir" && [ -w "$outdir" ] || { echo "$0: cannot write to -out '$outdir'" >&2; exit 2; }
    outdir=$(cd "$outdir" && pwd)
    rm -f "$outdir"/*-r[0-9]*.json # the plots read every IMPL-COLL-rN.json there
fi
for v in $ompi; do
    case $v in tuned | han | none) ;; *) echo "$0: -ompi: tuned, han or none" >&2; exit 2 ;; esac
done
[ "$ompi" = none ] && ompi=""
plans=$(echo "$plans" | tr ',' ' ')
for p in $plans; do
    case $p in auto | tuned | han | *[!a-zA-Z0-9_:-]*) echo "$0: -plans: '$p' is not a plan name" >&2; exit 2 ;; esac
done

here=$(cd "$(dirname "$0")" && pwd)
find_bin() {
    if [ -x "$here/$1" ]; then echo "$here/$1"
    elif [ -n "${BUILD:-}" ] && [ -x "$BUILD/bench/$1" ]; then echo "$BUILD/bench/$1"
    fi
}
[ -n "$ccl" ] || ccl=$(find_bin ccl-bench)
[ -n "$ccl" ] && [ -x "$ccl" ] || { echo "$0: ccl-bench not found (use --ccl, or set BUILD)" >&2; exit 2; }
if [ -n "$ompi" ]; then
    [ -n "$mpi" ] || mpi=$(find_bin mpi-bench)
    [ -n "$mpi" ] && [ -x "$mpi" ] || { echo "$0: mpi-bench not found (use --mpi, set BUILD, or -ompi none)" >&2; exit 2; }
fi
# The namespace helpers: in the source tree next to bench/, or installed under share/podccl.
lib=""
for d in "${PODCCL_NETNS_LIB:-}" "$here/../tests/netns" "$here/../share/podccl/netns"; do
    [ -n "$d" ] && [ -f "$d/tiers.sh" ] && [ -f "$d/lib.sh" ] && [ -x "$d/rsh-agent.sh" ] && { lib=$d; break; }
done
[ -n "$lib" ] || { echo "$0: tests/netns/tiers.sh not found (set PODCCL_NETNS_LIB to its folder)" >&2; exit 2; }
# shellcheck source=../tests/netns/tiers.sh
. "$lib/tiers.sh"
if [ -n "$ompi" ] && ! netns_have_mpirun; then
    echo "$0: Open MPI's mpirun not found (MPIRUN=${MPIRUN:-mpirun}): podccl only" >&2
    ompi=""
fi
_tiers_parse "$layout" || exit 2

ncpu=$(nproc 2>/dev/null || echo 1)
export PODCCL_NET=${PODCCL_NET:-ofi} PODCCL_SOCKET_IFNAME=${PODCCL_SOCKET_IFNAME:-eth0}
# A rank that dies leaves the others waiting this long (the default, 300 s, would stall the
# whole benchmark); a 64 MiB call over a 250mbit rail takes seconds, not minutes.
export PODCCL_TIMEOUT=${PODCCL_TIMEOUT:-120}
# podccl's automatic choice is what "auto" measures: no forced algorithm from the caller.
unset PODCCL_RANK PODCCL_NRANKS PODCCL_COMM_ID PODCCL_HOSTID PODCCL_ALGO
# Every namespace host runs on this machine's cores, which also carry the kernel's side of every
# link (veth, bridge, tbf): ranks that spin starve it (see netns-bench.sh for the measurements),
# so both libraries yield while they wait. A PODCCL_SHM_SPIN in the environment wins.
export PODCCL_SHM_SPIN=${PODCCL_SHM_SPIN:-20}
NETNS_MPIRUN_EXTRA="--mca mpi_yield_when_idle 1 ${NETNS_MPIRUN_EXTRA:-}"
# Open MPI 4.1: HAN's priority is 0 (never chosen), so the default is tuned; ^han says so
# outright. HAN needs its priority raised; its pipelined all-reduce (segments of 64 KiB) dies
# over btl tcp in 4.1.4 ("mca_btl_tcp_frag_send: writev error ... Bad address" from 128 KiB on),
# the simple one (intra-host reduce, inter-host all-reduce, intra-host broadcast) runs. HAN does
# all-reduce, all-gather, broadcast, reduce (and gather, scatter); reduce-scatter and all-to-all
# fall through to tuned. With hosts of unequal rank counts HAN 4.1.4 crashes (n/a).
tuned_mca=${TIERS_BENCH_TUNED_MCA:---mca coll ^han}
han_mca=${TIERS_BENCH_HAN_MCA:---mca coll_han_priority 100 --mca coll_han_use_simple_allreduce 1}
# A run that hangs is cut off after this many seconds (it counts as failed).
limit=${TIERS_BENCH_LIMIT:-900}

tmp=$(mktemp -d /tmp/tiers-bench.XXXXXX) || exit 2
keep() { [ -z "${NETNS_KEEP_LOGS:-}" ] || { mkdir -p "$NETNS_KEEP_LOGS" && cp -r "$tmp"/. "$NETNS_KEEP_LOGS"/; }; }
netns_atexit "keep; rm -rf '$tmp'"
tiers_up "$layout" "$cab" "$spine" || { echo "$0: could not set up the cluster" >&2; exit 2; }
nr=$TIERS_NRANKS
topo=$tmp/topo.json
tiers_topo_file "$topo"
export PODCCL_TOPO_FILE=$topo

# Rank placement: rank_host[r]. block: hosts' slots in order; rr: round robin over the hosts,
# skipping full ones (what Open MPI's --map-by node does with a hostfile's slots).
rank_host=()
if [ "$place" = block ]; then
    for ((h = 0; h < TIERS_NH; h++)); do
        for ((s = 0; s < TIERS_SLOTS[h]; s++)); do rank_host+=("$h"); done
    done
else
    left=("${TIERS_SLOTS[@]}")
    while [ ${#rank_host[@]} -lt "$nr" ]; do
        for ((h = 0; h < TIERS_NH; h++)); do
            [ "${left[h]}" -gt 0 ] || continue
            rank_host+=("$h")
            left[h]=$((left[h] - 1))
        done
    done
fi
map=()
[ "$place" = rr ] && map=(--map-by node)
if [ -n "$ompi" ]; then
    tiers_mpirun "$tmp/hostfile"
    # Open MPI's own placement first: the comparison is fair only if it matches podccl's.
    # shellcheck disable=SC2016 # expanded by the ranks' shells
    timeout -k 5 60 "${NETNS_MPIRUN[@]}" "${map[@]}" -np "$nr" sh -c 'echo "$OMPI_COMM_WORLD_RANK $(hostname)"' \
        >"$tmp/ompi.layout" 2>&1 &
    netns_track $!
    netns_wait $! || { echo "$0: mpirun across the namespaces failed:" >&2; cat "$tmp/ompi.layout" >&2; exit 2; }
    for ((r = 0; r < nr; r++)); do
        h=$(awk -v r=$r '$1 == r { print $2 }' "$tmp/ompi.layout")
        if [ "$h" != "${TIERS_HOST[rank_host[r]]}" ]; then
            echo "$0: Open MPI puts rank $r on '$h', podccl on ${TIERS_HOST[rank_host[r]]}" >&2
            exit 2
        fi
    done
fi
impls="auto $plans"
for v in $ompi; do impls="$impls ompi-$v"; done

: >"$tmp/rows"
: >"$tmp/failures"
: >"$tmp/na"
port=$((30000 + $$ % 20000))
sweep=(-b "$minb" -e "$maxb" -f "$step" -d "$type" -o "$op" -n "$iters" -w "$warm")

# run_podccl OUT ERR ARGS...: one ccl-bench run, one process per rank (podccl's environment
# bootstrap); rank 0's stdout to OUT, every rank's stderr to ERR. Returns the worst exit status.
run_podccl() {
    local out=$1 err=$2 r h s pids=() rc=0 deadline
    shift 2
    port=$((port + 1))
    local commid=${TIERS_ADDR[rank_host[0]]}:$port
    for ((r = 0; r < nr; r++)); do
        h=${rank_host[r]}
        netns_cmd "$h"
        "${NETNS_CMD[@]}" env PODCCL_RANK=$r PODCCL_NRANKS="$nr" PODCCL_COMM_ID="$commid" \
            "$ccl" "$@" >"$out.$r" 2>>"$err" &
        pids[r]=$!
    done
    deadline=$(($(date +%s) + limit))
    for ((r = 0; r < nr; r++)); do
        while kill -0 "${pids[r]}" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
        kill -0 "${pids[r]}" 2>/dev/null && { kill -9 "${pids[r]}"; echo "rank $r: killed after $limit s" >>"$err"; }
        wait "${pids[r]}"
        s=$?
        [ $s = 0 ] || [ $rc != 0 ] || rc=$s
    done
    mv "$out.0" "$out"
    rm -f "$out".*
    return $rc
}

# run_ompi OUT ERR VARIANT ARGS...: mpi-bench under mpirun with the variant's MCA flags.
run_ompi() {
    local out=$1 err=$2 v=$3 mca
    shift 3
    if [ "$v" = han ]; then mca=$han_mca; else mca=$tuned_mca; fi
    # shellcheck disable=SC2086 # the MCA flags are words
    timeout -k 5 "$limit" "${NETNS_MPIRUN[@]}" "${map[@]}" $mca -np "$nr" "$mpi" "$@" >"$out" 2>"$err" &
    netns_track $!
    netns_wait $!
}

# run_one IMPL COLL ROUND: one benchmark; appends "coll size impl time" per row to rows.
run_one() {
    local impl=$1 coll=$2 round=$3 out err rc bad why c=0
    out=$tmp/$impl.$coll.$round.out
    err=$tmp/$impl.$coll.$round.err
    : >"$err"
    [ "$check" = 1 ] && [ "$round" = 1 ] && c=1
    local js=()
    if [ -n "$outdir" ]; then
        case $impl in
        auto) js=(--json "$outdir/$impl-$coll-r$round.json" --label "podccl auto") ;;
        ompi-*) js=(--json "$outdir/$impl-$coll-r$round.json" --label "Open MPI ${impl#ompi-}") ;;
        *) js=(--json "$outdir/$impl-$coll-r$round.json" --label "podccl $impl") ;;
        esac
    fi
    case $impl in
    auto) run_podccl "$out" "$err" "$coll" "${sweep[@]}" -c $c "${js[@]}" ;;
    ompi-*) run_ompi "$out" "$err" "${impl#ompi-}" "$coll" "${sweep[@]}" -c $c "${js[@]}" ;;
    *) run_podccl "$out" "$err" "$coll" "${sweep[@]}" -c $c -A "$impl" "${js[@]}" ;;
    esac
    rc=$?
    bad=$(awk '/^# Out of bounds values/ { print $7 }' "$out")
    if [ "${bad:-0}" != 0 ]; then
        echo "# FAILED: $impl $coll round $round: exit $rc, $bad wrong values" >>"$tmp/failures"
        tail -n 5 "$err" | sed 's/^/#   /' >>"$tmp/failures"
    elif [ $rc -ne 0 ]; then
        why="exit $rc$([ $rc = 124 ] && echo ", killed after $limit s")"
        case $impl in
        auto | ompi-tuned)
            echo "# FAILED: $impl $coll round $round: $why" >>"$tmp/failures"
            tail -n 5 "$err" | sed 's/^/#   /' >>"$tmp/failures"
            ;;
        *)
            # A plan that does not exist (yet) or does not apply: n/a, with its reason once.
            if ! grep -q "^# n/a: $impl $coll:" "$tmp/na"; then
                echo "# n/a: $impl $coll: $why: $(grep -v '^#\|^\s*$\|setpgid\|^\[' "$err" | tail -n 1 | cut -c 1-200)" >>"$tmp/na"
            fi
            ;;
        esac
        return 0 # rows of a failed run don't count
    fi
    awk -v c="$coll" -v i="$impl" '!/^#/ && NF >= 9 { print c, $1, i, $6 }' "$out" >>"$tmp/rows"
    [ -s "$tmp/header.$impl" ] || grep '^# \(transport\|MPI\|podccl version\|nranks\)' "$out" >"$tmp/header.$impl"
}

# The commands, as run (rank r's environment on its host; ccl-bench is started once per rank).
cmd_podccl="[host of rank r] env PODCCL_RANK=r PODCCL_NRANKS=$nr PODCCL_COMM_ID=${TIERS_ADDR[rank_host[0]]}:PORT $ccl COLL ${sweep[*]} -c C"
cmd_ompi="${NETNS_MPIRUN[*]:-mpirun} ${map[*]} MCA -np $nr ${mpi:-mpi-bench} COLL ${sweep[*]} -c C"

start=$(date +%s)
nimpl=$(echo "$impls" | wc -w)
for ((r = 1; r <= rounds; r++)); do
    # Rotate who goes first: round r starts with the ((r-1) mod nimpl)-th implementation.
    # shellcheck disable=SC2086
    set -- $impls
    k=$(((r - 1) % nimpl))
    order="${*:k+1} ${*:1:k}"
    for coll in $colls; do
        for impl in $order; do
            echo "# round $r/$rounds: $impl $coll ($(($(date +%s) - start)) s)" >&2
            run_one "$impl" "$coll" "$r"
        done
    done
done

# Bytes per link of one call of each podccl plan at the largest size: ccl-bench -n 1 -w 0 -c 0
# makes two calls (out-of-place and in-place); half of what each link carried, bootstrap and
# barriers included (kilobytes).
: >"$tmp/links"
if [ "$links" = 1 ]; then
    maxbytes=$(awk '{ if ($2 + 0 > m) m = $2 + 0 } END { print m + 0 }' "$tmp/rows")
    [ "$maxbytes" -gt 0 ] || maxbytes=$maxb
    for coll in $colls; do
        for impl in auto $plans; do
            echo "# links: $impl $coll $maxbytes B ($(($(date +%s) - start)) s)" >&2
            a=()
            [ "$impl" = auto ] || a=(-A "$impl")
            before=$(tiers_counters)
            if run_podccl "$tmp/l.out" "$tmp/l.err" "$coll" -b "$maxbytes" -e "$maxbytes" -d "$type" \
                -o "$op" -n 1 -w 0 -c 0 "${a[@]}"; then
                # shellcheck disable=SC2086
                tiers_link_report $before >/dev/null
                echo "$coll $impl ${TIERS_DELTA[*]}" >>"$tmp/links"
            else
                echo "$coll $impl n/a" >>"$tmp/links"
            fi
            rm -f "$tmp/l.err"
        done
    done
fi

# ---- report
fmt_rate() { if [ -n "$1" ]; then echo "$1 ($(awk -v b="$2" 'BEGIN { printf "%.4g", b / 8e9 }') GB/s)"; else echo unshaped; fi; }
echo "# tiers-bench: podccl (ccl-bench, PODCCL_NET=$PODCCL_NET, PODCCL_SHM_SPIN=$PODCCL_SHM_SPIN, env bootstrap) vs Open MPI (mpi-bench, btl tcp,self, pml ob1, mpi_yield_when_idle 1)"
echo "# cluster: $TIERS_NC cabinets, $TIERS_NH hosts (network namespaces), $nr ranks on $ncpu cores; layout $TIERS_LAYOUT (ranks per host, '|' between cabinets)"
for ((c = 0; c < TIERS_NC; c++)); do
    line=""
    for h in ${TIERS_CAB_HOSTS[c]}; do
        rs=""
        for ((r = 0; r < nr; r++)); do [ "${rank_host[r]}" != "$h" ] || rs="$rs${rs:+,}$r"; done
        line="$line ${TIERS_HOST[h]} (${TIERS_ADDR[h]}: ranks $rs)"
    done
    echo "#   cabinet $c:$line"
done
echo "# links: cabinet $(fmt_rate "$TIERS_CAB_RATE" "$TIERS_CAB_RATE_BPS"), spine rail $(fmt_rate "$TIERS_SPINE_RATE" "$TIERS_SPINE_RATE_BPS"); tbf both directions, queue ${NETNS_QUEUE_MS:-10} ms; placement $place"
echo "# PODCCL_TOPO_FILE: $(tr -s ' \n' ' ' <"$topo")"
echo "# sizes $minb..$maxb x$step, type $type, op $op, -n $iters -w $warm, out-of-place; rounds=$rounds, order rotating; medians over rounds; checked (-c 1) in round 1: $([ "$check" = 1 ] && echo yes || echo no)"
[ -z "$ompi" ] || echo "# hostfile: $(tr '\n' ' ' <"$tmp/hostfile")"
echo "# commands (COLL the collective; C = 1 in round 1 with -check 1, else 0):"
echo "#   podccl auto:      $cmd_podccl"
for p in $plans; do echo "#   podccl $p: $(printf '%*s' $((9 - ${#p})) '')$cmd_podccl -A $p"; done
for v in $ompi; do
    if [ "$v" = han ]; then m=$han_mca; else m=$tuned_mca; fi
    echo "#   Open MPI $v: $(printf '%*s' $((7 - ${#v})) '')${cmd_ompi/MCA/$m}"
done
# What each library reported about itself (podccl: transport; Open MPI: version), once each.
sed "s/^# /# podccl: /" "$tmp/header.auto" 2>/dev/null
for v in $ompi; do
    [ -s "$tmp/header.ompi-$v" ] || continue
    sed "s/^# /# Open MPI: /" "$tmp/header.ompi-$v"
    break
done
[ "$rounds" -ge 3 ] || echo "# note: -r $rounds < 3: the medians are not robust against a noisy run"

# Bounds (GB/s of busbw; none without both rates). g cabinets, k_c hosts in cabinet c, p_i ranks
# on host i, n ranks, S the size; B_cab, B_spine the rates. Phases in sequence add:
#   allreduce (rail-parallel hierarchy: reduce-scatter in the cabinet, all-reduce of each host's
#     S/k_c shard over its rail, all-gather in the cabinet):
#     T = max_c 2(k_c-1)/k_c S / B_cab + 2(g-1)/g S / (min_c k_c) / B_spine
#   allgather, reducescatter (over the rails first, then in the cabinet; mirrored): host i holds
#     d_i = p_i S/n, cabinet c D_c; its rail brings (S - D_c)/k_c, its cabinet link the rest:
#     T = max_c (S - D_c)/k_c / B_spine + max_i (S - d_i - (S - D_c)/k_c) / B_cab
#   alltoall (direct exchange, both links at once): host i sends p_i (n_c - p_i)/n S over its
#     cabinet link and p_i (n - n_c)/n S over its rail: T = max_i max(cab_i/B_cab, rail_i/B_spine)
# busbw = S/T x the collective's nccl-tests factor (the bound is the same for every S).
bounds=$(awk -v nc="$TIERS_NC" -v n="$nr" -v bc="$TIERS_CAB_RATE_BPS" -v bs="$TIERS_SPINE_RATE_BPS" \
    -v cabs="$(for ((h = 0; h < TIERS_NH; h++)); do printf '%s ' "${TIERS_CAB[h]}"; done)" \
    -v slots="${TIERS_SLOTS[*]}" '
BEGIN {
    nh = split(cabs, cab, " "); split(slots, p, " ")
    if (bc <= 0 || bs <= 0) { print "none"; exit }
    bc /= 8e9; bs /= 8e9   # GB/s, and S = 1 GB below: T in s per GB
    for (i = 1; i <= nh; i++) { k[cab[i]]++; nrc[cab[i]] += p[i] }
    kmin = 1e9; tc = 0
    for (c = 0; c < nc; c++) { if (k[c] < kmin) kmin = k[c]; t = 2 * (k[c] - 1) / k[c] / bc; if (t > tc) tc = t }
    ar = tc + (nc > 1 ? 2 * (nc - 1) / nc / kmin / bs : 0)
    ts = 0; tc = 0
    for (c = 0; c < nc; c++) { t = (1 - nrc[c] / n) / k[c] / bs; if (t > ts) ts = t }
    for (i = 1; i <= nh; i++) { c = cab[i]; t = (1 - p[i] / n - (1 - nrc[c] / n) / k[c]) / bc; if (t > tc) tc = t }
    ag = ts + tc
    a2a = 0
    for (i = 1; i <= nh; i++) {
        c = cab[i]; t1 = p[i] * (nrc[c] - p[i]) / n / bc; t2 = p[i] * (n - nrc[c]) / n / bs
        if (t1 > a2a) a2a = t1; if (t2 > a2a) a2a = t2
    }
    f = (n - 1) / n
    printf "allreduce=%.6g allgather=%.6g reducescatter=%.6g alltoall=%.6g\n", 2 * f / ar, f / ag, f / ag, (a2a > 0 ? f / a2a : 0)
}')
if [ $latency = 0 ]; then
    echo "# busbw in GB/s (1e9 B/s) from the median time, nccl-tests factors; auto/tuned, auto/HAN = busbw ratios (> 1: podccl auto faster);"
    echo "# auto/best = auto's time / the fastest forced plan's time at that size (<= 1: the automatic choice is as good as any plan); n/a: did not run"
fi
[ "$bounds" = none ] || [ $latency = 1 ] || echo "# bound: busbw of the busiest link at its rate, phases in sequence (formulas in the script); %bound = auto / bound"

[ $latency = 1 ] || awk -v n="$nr" -v impls="$impls" -v plans="$plans" -v bounds="$bounds" '
function median(list,   v, m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    if (m == 0) return -1
    return m % 2 ? v[(m + 1) / 2] + 0 : (v[m / 2] + v[m / 2 + 1]) / 2
}
function fmt(v, f) { return v < 0 ? "n/a" : sprintf(f, v) }
BEGIN {
    ni = split(impls, im, " "); np = split(plans, pl, " ")
    nb = split(bounds, bl, " ")
    for (i = 1; i <= nb; i++) { split(bl[i], kv, "="); bound[kv[1]] = kv[2] + 0 }
}
{
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[$1] = order[$1] " " $2 }
    t[key, $3] = t[key, $3] " " $4
}
END {
    ncoll = split("allreduce allgather reducescatter alltoall broadcast reduce", cl, " ")
    for (kc = 1; kc <= ncoll; kc++) {
        c = cl[kc]
        if (!(c in order)) continue
        f = c == "allreduce" ? 2 * (n - 1) / n : (c == "broadcast" || c == "reduce") ? 1 : (n - 1) / n
        b = (c in bound) && bound[c] > 0 ? bound[c] : -1
        printf "\n### %s\n\n| size (B) |", c
        for (i = 1; i <= ni; i++) printf " %s |", im[i] == "auto" ? "podccl auto" : im[i] ~ /^ompi-/ ? "OMPI " substr(im[i], 6) : "podccl " im[i]
        hast = index(impls, "ompi-tuned") > 0; hash = index(impls, "ompi-han") > 0
        if (hast) printf " auto/tuned |"
        if (hash) printf " auto/HAN |"
        if (b > 0) printf " bound | %%bound |"
        if (np) printf " auto/best (best plan) |"
        printf "\n|---:|"
        for (i = 1; i <= ni + hast + hash + (b > 0) * 2 + (np > 0); i++) printf "---:|"
        printf "\n"
        m = split(order[c], sizes, " ")
        for (s = 1; s <= m; s++) {
            sz = sizes[s]; key = c SUBSEP sz
            printf "| %s |", sz
            for (i = 1; i <= ni; i++) {
                tm[i] = median(t[key, im[i]])
                bw[i] = tm[i] > 0 ? sz / tm[i] / 1000 * f : -1
                printf " %s |", fmt(bw[i], "%.4f")
            }
            ta = tm[1]
            for (i = 1; i <= ni; i++) {
                if (im[i] == "ompi-tuned") printf " %s |", fmt(ta > 0 && tm[i] > 0 ? tm[i] / ta : -1, "%.2f")
            }
            for (i = 1; i <= ni; i++) {
                if (im[i] == "ompi-han") printf " %s |", fmt(ta > 0 && tm[i] > 0 ? tm[i] / ta : -1, "%.2f")
            }
            if (b > 0) printf " %.4f | %s |", b, fmt(bw[1] > 0 ? 100 * bw[1] / b : -1, "%.0f")
            if (np) {
                best = -1; bn = ""
                for (i = 2; i <= ni; i++) {
                    if (im[i] ~ /^ompi-/ || tm[i] <= 0) continue
                    if (best < 0 || tm[i] < best) { best = tm[i]; bn = im[i] }
                }
                printf(" %s |", (best > 0 && ta > 0) ? sprintf("%.2f (%s)", ta / best, bn) : "n/a")
            }
            printf "\n"
        }
    }
}' "$tmp/rows"

if [ $latency = 1 ]; then
    # The latency view: the three sizes asked for, in microseconds.
    echo
    echo "### all-reduce latency (us, median over rounds; $nr ranks on $TIERS_NH hosts, links $([ -n "$TIERS_CAB_RATE$TIERS_SPINE_RATE" ] && echo shaped || echo unshaped))"
    echo
    awk -v impls="$impls" '
function median(list,   v, m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    if (m == 0) return -1
    return m % 2 ? v[(m + 1) / 2] + 0 : (v[m / 2] + v[m / 2 + 1]) / 2
}
{ t[$2, $3] = t[$2, $3] " " $4 }
END {
    ni = split(impls, im, " ")
    printf "| size (B) |"
    for (i = 1; i <= ni; i++) printf " %s (us) |", im[i] == "auto" ? "podccl auto" : "OMPI " substr(im[i], 6)
    for (i = 2; i <= ni; i++) printf " %s / auto |", "OMPI " substr(im[i], 6)
    printf "\n|---:|"
    for (i = 1; i < 2 * ni; i++) printf "---:|"
    printf "\n"
    ns = split("8 1024 65536", sz, " ")
    for (s = 1; s <= ns; s++) {
        printf "| %s |", sz[s]
        for (i = 1; i <= ni; i++) { tm[i] = median(t[sz[s], im[i]]); printf(" %s |", tm[i] < 0 ? "n/a" : sprintf("%.1f", tm[i])) }
        for (i = 2; i <= ni; i++) printf(" %s |", (tm[1] > 0 && tm[i] > 0) ? sprintf("%.2f", tm[i] / tm[1]) : "n/a")
        printf "\n"
    }
}' "$tmp/rows"
fi

if [ -s "$tmp/links" ]; then
    echo
    echo "### bytes per link for one call at the largest size (MB = 1e6 B, sent/received by each host; half of an out-of-place + an in-place call)"
    awk -v nh="$TIERS_NH" -v cabs="$(for ((h = 0; h < TIERS_NH; h++)); do printf '%s ' "${TIERS_CAB[h]}"; done)" '
BEGIN { split(cabs, cab, " ") }
{
    if ($1 != last) {
        last = $1
        printf "\n%s:\n\n| plan |", $1
        for (h = 0; h < nh; h++) printf " h%d cab%d link | h%d spine |", h, cab[h + 1], h
        printf "\n|---|"
        for (h = 0; h < 2 * nh; h++) printf "---:|"
        printf "\n"
    }
    printf "| %s |", $2
    if ($3 == "n/a") { for (h = 0; h < 2 * nh; h++) printf " n/a |"; printf "\n"; next }
    for (h = 0; h < nh; h++) {
        printf " %.1f/%.1f |", $(3 + 4 * h) / 2e6, $(4 + 4 * h) / 2e6
        printf " %.1f/%.1f |", $(5 + 4 * h) / 2e6, $(6 + 4 * h) / 2e6
    }
    printf "\n"
}' "$tmp/links"
fi

if [ -s "$tmp/na" ]; then
    echo
    cat "$tmp/na"
fi
if [ -n "$outdir" ]; then
    # plots from the JSON files: one line per label (medians over rounds)
    py=""
    for p in ${PYTHON:-} /usr/bin/python3 python3; do
        if "$p" -c 'import matplotlib' 2>/dev/null; then py=$p; break; fi
    done
    echo
    if [ -z "$py" ]; then
        echo "# JSON in $outdir; plots left out: no python3 with matplotlib (apt-get install python3-matplotlib)"
    else
        for c in $colls; do
            set --
            for f in "$outdir"/*-"$c"-r*.json; do [ -f "$f" ] && set -- "$@" "$f"; done
            [ $# -gt 0 ] || continue
            "$py" "${PLOT:-$here/plot.py}" -c "$c" -o "$outdir/tiers" "$@" ||
                echo "# FAILED: plot of $c (${PLOT:-$here/plot.py})" >>"$tmp/failures"
        done
    fi
fi
echo
echo "# took $(($(date +%s) - start)) s"
if [ -s "$tmp/failures" ]; then
    echo
    cat "$tmp/failures"
    exit 1
fi
echo "# all results checked: OK"
exit 0
