#!/bin/bash
# run_netns.sh: podccl across hosts, over the libfabric transport (PODCCL_NET=ofi). The hosts are
# Linux network namespaces on this machine joined by a bridge (tests/netns/lib.sh), so ranks on
# different hosts can only talk through the network transport, while ranks on one host share
# memory. Four parts, each with its own verdict:
#   a. 3 hosts with 2 + 1 + 3 ranks: tests/test_coll --env --quick, started by podccl's own
#      environment bootstrap (PODCCL_RANK/PODCCL_NRANKS/PODCCL_COMM_ID, one process per rank);
#   b. the same layout started by Open MPI's mpirun (hostfile with slots 2/1/3, tests/netns/
#      rsh-agent.sh as its "ssh");
#   c. 2 hosts, one rank each, links shaped to 1gbit by tbf: ccl-bench allreduce, allgather and
#      alltoall with checking; the header must name the ofi transport and its provider;
#   d. 2 hosts: one rank is killed (SIGKILL) in the middle of a long ccl-bench loop; the other
#      must exit with an error message within PODCCL_TIMEOUT plus a margin (not hang). Done
#      killing rank 1, then rank 0 (the bootstrap root); then host 1's link is cut (no FIN, no
#      RST: a crashed host) and both ranks must fail the same way.
# a and b also check that every rank saw the expected layout (its podccl INFO line "rank R of N
# on host H (L of NL local ranks, K hosts, V levels)") and that every host moved data over its link; c
# checks the same through ccl-bench's header and the link's byte counters. Nothing is timed.
#
# Exits 0 if every part that ran passed, 1 if one failed, 77 (automake's SKIP) with the reason
# if this machine can't make namespaces (not root, no iproute2) or the build has no libfabric.
# Part b is skipped (said so; the rest still counts) without Open MPI's mpirun.
# Environment: top_builddir (set by make check) or BUILD: the build tree; PODCCL_TIMEOUT
# (default 60); PODCCL_OFI_PROVIDER and FI_* pass through to the ranks; NETNS_KEEP_LOGS=DIR
# copies the logs there.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns/lib.sh
. "$here/netns/lib.sh"

build=${top_builddir:-${BUILD:-}}
[ -n "$build" ] || build=$here/..
build=$(cd "$build" && pwd) || exit 1
test_coll=$build/tests/test_coll
ccl=$build/bench/ccl-bench
for b in "$test_coll" "$ccl"; do
    if [ ! -x "$b" ]; then
        echo "run_netns.sh: $b not built (make check builds it; or set top_builddir/BUILD)"
        exit 1
    fi
done
if [ -f "$build/config.h" ] && ! grep -q '^#define HAVE_OFI 1' "$build/config.h"; then
    netns_skip "this build has no libfabric transport (configure found no libfabric)"
fi

to=${PODCCL_TIMEOUT:-60}
export PODCCL_NET=ofi PODCCL_TIMEOUT=$to PODCCL_SOCKET_IFNAME=eth0
# Rank, size and host identity come from each part, never from the caller.
unset PODCCL_RANK PODCCL_NRANKS PODCCL_COMM_ID PODCCL_HOSTID PODCCL_DEBUG_FILE
tmp=$(mktemp -d /tmp/run_netns.XXXXXX) || exit 1
keep() { [ -z "${NETNS_KEEP_LOGS:-}" ] || { mkdir -p "$NETNS_KEEP_LOGS" && cp -r "$tmp"/. "$NETNS_KEEP_LOGS"/; }; }
netns_atexit "keep; rm -rf '$tmp'"
port=$((30000 + $$ % 20000))
verdicts=""
failed=0

say() { echo "run_netns.sh: $*"; }
# shellcheck source=report.sh
. "$here/report.sh"

# wait_until PID DEADLINE(epoch s): waits for PID (a child of this shell) and sets rc to its exit
# status; if it is still running at DEADLINE, kills it and sets rc=hang.
wait_until() {
    while kill -0 "$1" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$2" ]; then
            kill -9 "$1" 2>/dev/null
            wait "$1" 2>/dev/null
            rc=hang
            return
        fi
        sleep 0.2
    done
    wait "$1"
    rc=$?
}

# check_layout PART NRANKS FILE...: (PART names the part in the caller's messages only) every rank 0..NRANKS-1 must have logged its podccl INFO line
# with its host's name, the rank count of that host and the host count; rank_host[r] gives the
# expected host of rank r, layout[h] the ranks on host h.
check_layout() {
    local n=$2 r h line bad=""
    shift 2
    for ((r = 0; r < n; r++)); do
        h=${rank_host[r]}
        line=$(grep -h -o "rank $r of $n on host [^ ]* ([0-9]* of [0-9]* local ranks, [0-9]* hosts[,)]" \
            "$@" | head -n 1)
        if [ -z "$line" ]; then
            bad="$bad rank $r: no INFO line 'rank $r of $n on host ...' (src/topo.c);"
        elif [ "$line" != "rank $r of $n on host ${NETNS_HOST[h]} (${line#*\(}" ] ||
            ! echo "$line" | grep -q "of ${layout[h]} local ranks, ${#layout[@]} hosts[,)]\$"; then
            bad="$bad rank $r: '$line', expected host ${NETNS_HOST[h]} with ${layout[h]} local ranks of ${#layout[@]} hosts;"
        fi
    done
    [ -z "$bad" ] && return 0
    echo "$bad" | tr ';' '\n' | sed '/^$/d; s/^ */  layout: /'
    return 1
}

# link_used MIN_BYTES BEFORE...: every host must have sent and received at least MIN_BYTES on
# its link since the counters in BEFORE (one "tx rx" pair per host): proof that the data crossed
# the network, not shared memory.
link_used() {
    local min=$1 i tx rx ok=0
    shift
    local before=("$@")
    for ((i = 0; i < NETNS_N; i++)); do
        read -r tx rx <<<"$(netns_bytes "$i")"
        tx=$((tx - ${before[2 * i]})) rx=$((rx - ${before[2 * i + 1]}))
        echo "  host $i (${NETNS_HOST[i]}, ${NETNS_ADDR[i]}): sent $tx B, received $rx B"
        [ "$tx" -ge "$min" ] && [ "$rx" -ge "$min" ] || ok=1
    done
    return $ok
}
counters() { local i; for ((i = 0; i < NETNS_N; i++)); do netns_bytes "$i"; done; }

# ---------------------------------------------------------------------------------------------
# a, b: 3 hosts, 2 + 1 + 3 ranks
layout=(2 1 3)
rank_host=(0 0 1 2 2 2)
nr=6
say "3 hosts (network namespaces), ranks 2 + 1 + 3, PODCCL_NET=ofi PODCCL_TIMEOUT=$to${PODCCL_OFI_PROVIDER:+ PODCCL_OFI_PROVIDER=$PODCCL_OFI_PROVIDER}"
netns_up 3 || { say "could not set up the namespaces"; exit 1; }
say "hosts: ${NETNS_HOST[*]} on $NETNS_SUBNET (bridge $NETNS_BRIDGE $NETNS_BRADDR)"
# test_coll --quick moves far more than this across hosts; the bootstrap alone far less.
min_bytes=1000000

# a: podccl's environment bootstrap
port=$((port + 1))
commid=${NETNS_ADDR[0]}:$port
say "part a: environment bootstrap, PODCCL_COMM_ID=$commid"
read -r -a before <<<"$(counters | tr '\n' ' ')"
pids=()
for ((r = 0; r < nr; r++)); do
    h=${rank_host[r]}
    netns_cmd "$h"
    echo "+ [${NETNS_HOST[h]}] PODCCL_RANK=$r PODCCL_NRANKS=$nr PODCCL_COMM_ID=$commid $test_coll --env --quick"
    "${NETNS_CMD[@]}" env PODCCL_RANK=$r PODCCL_NRANKS=$nr PODCCL_COMM_ID="$commid" \
        PODCCL_DEBUG=INFO PODCCL_DEBUG_SUBSYS=^TUNE "$test_coll" --env --quick \
        >"$tmp/a.$r.out" 2>"$tmp/a.$r.err" &
    pids[r]=$!
done
deadline=$(($(date +%s) + 240))
why=""
for ((r = 0; r < nr; r++)); do
    wait_until "${pids[r]}" "$deadline"
    cat "$tmp/a.$r.out"
    if [ "$rc" = hang ]; then
        why="$why rank $r hung (killed after 240 s);"
    elif [ "$rc" != 0 ]; then
        why="$why rank $r exit $rc;"
    elif ! grep -q "test_coll --env: rank $r of $nr quick .*: PASS" "$tmp/a.$r.out"; then
        why="$why rank $r printed no PASS;"
    fi
done
check_layout a $nr "$tmp"/a.*.err || why="$why wrong layout;"
link_used $min_bytes "${before[@]}" || why="$why a host's link carried < $min_bytes B;"
if [ -z "$why" ]; then
    verdict a PASS "6 ranks on 3 hosts (2+1+3), every rank PASS"
else
    verdict a FAIL "$why"
    show "$tmp"/a.*.err
fi

# b: Open MPI's mpirun through the rsh agent
if ! netns_have_mpirun; then
    verdict b SKIP "no Open MPI mpirun (MPIRUN=${MPIRUN:-mpirun})"
else
    port=$((port + 1))
    commid=${NETNS_ADDR[0]}:$port
    netns_mpirun "$tmp/hostfile" "${layout[@]}"
    say "part b: mpirun, hostfile $(tr '\n' ' ' <"$tmp/hostfile")"
    # The launcher first: its layout on its own, so that a failure here is told apart from one
    # of podccl's.
    echo "+ ${NETNS_MPIRUN[*]} -np $nr sh -c 'echo \$(hostname) \$OMPI_COMM_WORLD_RANK ...'"
    timeout -k 5 60 "${NETNS_MPIRUN[@]}" -np $nr sh -c \
        'echo "layout: rank $OMPI_COMM_WORLD_RANK on $(hostname) local $OMPI_COMM_WORLD_LOCAL_RANK of $OMPI_COMM_WORLD_LOCAL_SIZE"' \
        >"$tmp/b.layout" 2>&1 &
    netns_track $!
    netns_wait $!
    rc=$?
    sort -k3n "$tmp/b.layout"
    why=""
    [ $rc = 0 ] || why="mpirun exit $rc;"
    for ((r = 0; r < nr; r++)); do
        h=${rank_host[r]}
        grep -q "^layout: rank $r on ${NETNS_HOST[h]} local [0-9]* of ${layout[h]}\$" "$tmp/b.layout" ||
            why="$why rank $r not on ${NETNS_HOST[h]} with ${layout[h]} local ranks;"
    done
    if [ -n "$why" ]; then
        verdict b FAIL "Open MPI across the namespaces: $why"
        show "$tmp/b.layout"
    else
        read -r -a before <<<"$(counters | tr '\n' ' ')"
        echo "+ ${NETNS_MPIRUN[*]} -x PODCCL_* -np $nr $test_coll --env --quick   (PODCCL_COMM_ID=$commid)"
        fwd=(-x PODCCL_NET -x PODCCL_TIMEOUT -x PODCCL_SOCKET_IFNAME -x PODCCL_COMM_ID="$commid"
            -x PODCCL_DEBUG=INFO -x PODCCL_DEBUG_SUBSYS=^TUNE)
        for v in PODCCL_OFI_PROVIDER PODCCL_ALGO $(env | sed -n 's/^\(FI_[A-Z0-9_]*\)=.*/\1/p'); do
            [ -z "${!v+x}" ] || fwd+=(-x "$v")
        done
        timeout -k 5 240 "${NETNS_MPIRUN[@]}" "${fwd[@]}" -np $nr "$test_coll" --env --quick \
            >"$tmp/b.out" 2>"$tmp/b.err" &
        netns_track $!
        netns_wait $!
        rc=$?
        grep -h "^test_coll\|^rank" "$tmp/b.out"
        why=""
        [ $rc = 0 ] || why="mpirun exit $rc$([ $rc = 124 ] && echo ' (hung: killed after 240 s)');"
        for ((r = 0; r < nr; r++)); do
            grep -q "test_coll --env: rank $r of $nr quick .*: PASS" "$tmp/b.out" ||
                why="$why rank $r printed no PASS;"
        done
        check_layout b $nr "$tmp/b.err" || why="$why wrong layout;"
        link_used $min_bytes "${before[@]}" || why="$why a host's link carried < $min_bytes B;"
        if [ -z "$why" ]; then
            verdict b PASS "6 ranks on 3 hosts (2+1+3) under mpirun, every rank PASS"
        else
            verdict b FAIL "$why"
            show "$tmp/b.out" "$tmp/b.err"
        fi
    fi
fi
netns_down

# ---------------------------------------------------------------------------------------------
# c: 2 hosts, 1 rank each, 1gbit links, ccl-bench with checking
layout=(1 1)
rank_host=(0 1)
say "2 hosts, 1 rank each, links shaped by tc tbf to 1gbit"
netns_up 2 1gbit || { say "could not set up the namespaces"; exit 1; }
say "hosts: ${NETNS_HOST[*]} on $NETNS_SUBNET; tbf rate 1gbit burst $NETNS_BURST B limit $NETNS_LIMIT B, both directions"
sweep=(-b 8 -e 4M -f 4 -n 3 -w 1 -c 1)
# Bytes each rank must at least send: half of every message (n = 2), 2 x (3 + 1) times (out of
# place and in place, timed and warm-up); allreduce sends more, all-to-all exactly this.
sum=0
for ((s = 8; s <= 4194304; s *= 4)); do sum=$((sum + s)); done
min_c=$((sum / 2 * 8))
# Provider names of libfabric that the "# transport:" line must give after the word ofi.
provs='tcp|sockets|udp|verbs|efa|psm[23]?|opx|cxi|usnic|ucx|rxm|rxd|shm|sm2|net|lnx'
why_c=""
for coll in allreduce allgather alltoall; do
    port=$((port + 1))
    commid=${NETNS_ADDR[0]}:$port
    read -r -a before <<<"$(counters | tr '\n' ' ')"
    pids=()
    for r in 0 1; do
        netns_cmd $r
        echo "+ [${NETNS_HOST[r]}] PODCCL_RANK=$r PODCCL_NRANKS=2 PODCCL_COMM_ID=$commid $ccl $coll ${sweep[*]}"
        "${NETNS_CMD[@]}" env PODCCL_RANK=$r PODCCL_NRANKS=2 PODCCL_COMM_ID="$commid" \
            "$ccl" $coll "${sweep[@]}" >"$tmp/c.$coll.$r.out" 2>"$tmp/c.$coll.$r.err" &
        pids[r]=$!
    done
    deadline=$(($(date +%s) + 120))
    why=""
    for r in 0 1; do
        wait_until "${pids[r]}" "$deadline"
        [ "$rc" = 0 ] || why="$why rank $r exit $rc$([ "$rc" = 1 ] && echo ' (wrong values)');"
    done
    o=$tmp/c.$coll.0.out
    grep -v '^#  *\((B)\|size\|out-of-place\)\|^#$' "$o"
    # every row: out-of-place and in-place #wrong are 0, and the footer says so
    rows=$(awk '!/^#/ && NF >= 13' "$o" | wc -l)
    badrows=$(awk '!/^#/ && NF >= 13 && ($9 != 0 || $13 != 0)' "$o" | wc -l)
    [ "$rows" -ge 10 ] || why="$why $rows result rows (expected 10: 8 B .. 2 MiB);"
    [ "$badrows" = 0 ] || why="$why $badrows rows with wrong values;"
    grep -q '^# Out of bounds values : 0 OK' "$o" || why="$why no '# Out of bounds values : 0 OK';"
    grep -q '^# nranks: 2  *hosts: 2' "$o" || why="$why header does not say 'nranks: 2  hosts: 2';"
    tl=$(grep -i '^# transport:.*ofi' "$o")
    if [ -z "$tl" ]; then
        why="$why no '# transport:' line naming ofi;"
    elif ! echo "${tl#*ofi}" | grep -qiwE "$provs"; then
        why="$why the '# transport:' line names no libfabric provider;"
    elif [ -n "${PODCCL_OFI_PROVIDER:-}" ] && ! echo "$tl" | grep -qiF "$PODCCL_OFI_PROVIDER"; then
        why="$why the '# transport:' line does not name PODCCL_OFI_PROVIDER=$PODCCL_OFI_PROVIDER;"
    fi
    link_used $min_c "${before[@]}" || why="$why a host's link carried < $min_c B;"
    if [ -n "$why" ]; then
        why_c="$why_c $coll:$why"
        show "$tmp/c.$coll.0.out" "$tmp/c.$coll.0.err" "$tmp/c.$coll.1.err"
    fi
done
if [ -z "$why_c" ]; then
    verdict c PASS "allreduce, allgather, alltoall 8 B..2 MiB over 1gbit links, #wrong 0, transport ofi named"
else
    verdict c FAIL "$why_c"
fi

# ---------------------------------------------------------------------------------------------
# d: a rank killed mid-run, then a host cut off; the others must fail, not hang. Same 2 hosts.
#   kill 1, kill 0: SIGKILL to rank 1, then to rank 0 (the rendezvous root); the other rank must
#                   exit non-zero with an error message;
#   cut 1:          host 1's link goes down (ip link set eth0 down: no FIN, no RST, the peer
#                   just stops answering, as a crashed host or a pulled cable); both ranks must
#                   exit non-zero with an error message (podcclTimeout, or a network error).
# Each within PODCCL_TIMEOUT + margin of the event; a killed rank within 10 s (its sockets close,
# so podccl notices it at once rather than by the timeout).
margin=30
# check_exit R EVENT: sets why (empty if fine) from rank R's exit status rc and its stderr.
check_exit() {
    msg=$(grep -v '^#' "$tmp/d.$case.$1.err" | grep -i 'fail\|error\|abort\|timeout\|remote' | head -n 3)
    echo "  rank $1: exit $rc after $el s: ${msg:-(no message)}"
    if [ "$rc" = hang ]; then
        why="$why rank $1 still running $((to + margin)) s after $2 (PODCCL_TIMEOUT=$to + $margin): a hang;"
    elif [ "$rc" = 0 ]; then
        why="$why rank $1 exited 0 after $2;"
    elif [ "$rc" -gt 128 ]; then
        why="$why rank $1 died of signal $((rc - 128)) instead of reporting an error;"
    elif [ -z "$msg" ]; then
        why="$why rank $1 exited $rc without an error message;"
    else
        ok="$ok rank $1 exited $rc after $el s with: $(echo "$msg" | head -n 1);"
    fi
}
for case in kill1 kill0 cut1; do
    victim=${case: -1}
    survivor=$((1 - victim))
    port=$((port + 1))
    commid=${NETNS_ADDR[0]}:$port
    args=(allreduce -b 1M -e 1M -n 1000000 -w 1 -c 0)
    read -r -a before <<<"$(counters | tr '\n' ' ')"
    pids=()
    for r in 0 1; do
        netns_cmd $r
        echo "+ [${NETNS_HOST[r]}] PODCCL_RANK=$r PODCCL_NRANKS=2 PODCCL_COMM_ID=$commid $ccl ${args[*]}"
        "${NETNS_CMD[@]}" env PODCCL_RANK=$r PODCCL_NRANKS=2 PODCCL_COMM_ID="$commid" \
            "$ccl" "${args[@]}" >"$tmp/d.$case.$r.out" 2>"$tmp/d.$case.$r.err" &
        pids[r]=$!
    done
    # Mid-run: once 8 MB more have crossed the survivor's link, the timed loop is running.
    why="" ok=""
    t0=$(date +%s)
    while :; do
        read -r tx rx <<<"$(netns_bytes $survivor)"
        [ $((tx - ${before[2 * survivor]})) -ge 8000000 ] && break
        if ! kill -0 "${pids[0]}" 2>/dev/null || ! kill -0 "${pids[1]}" 2>/dev/null; then
            why="a rank ended before the event;"
            break
        fi
        if [ $(($(date +%s) - t0)) -ge 90 ]; then
            why="no traffic after 90 s;"
            break
        fi
        sleep 0.1
    done
    if [ -z "$why" ]; then
        sleep 1
        if [ "${case#kill}" != "$case" ]; then
            event="the kill"
            kill -9 "${pids[victim]}"
            tk=$(date +%s.%N)
            echo "+ kill -9 rank $victim (pid ${pids[victim]}, on ${NETNS_HOST[victim]})"
            wait "${pids[victim]}" 2>/dev/null
            check=("$survivor")
        else
            event="the link went down"
            ip -n "${NETNS_HOST[victim]}" link set "$NETNS_IFNAME" down
            tk=$(date +%s.%N)
            echo "+ ip -n ${NETNS_HOST[victim]} link set $NETNS_IFNAME down   (host $victim cut off)"
            check=(0 1)
        fi
        deadline=$(($(date +%s) + to + margin))
        for r in "${check[@]}"; do
            wait_until "${pids[r]}" "$deadline"
            el=$(awk -v a="$tk" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            check_exit "$r" "$event"
            # A killed peer closes its sockets: podccl must notice at once, not by timeout.
            if [ "${case#kill}" != "$case" ] && [ "$rc" != hang ] &&
                awk -v e="$el" 'BEGIN { exit !(e >= 10) }'; then
                why="$why rank $r took $el s to notice the dead peer (expected well under PODCCL_TIMEOUT=$to);"
            fi
        done
    fi
    if [ -z "$why" ]; then
        ok=${ok# }
        verdict "d ($case)" PASS "${ok%;}"
    else
        verdict "d ($case)" FAIL "$why"
        show "$tmp/d.$case.0.err" "$tmp/d.$case.1.err"
    fi
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
done
netns_down

echo "run_netns.sh: verdicts:$verdicts"
if [ $failed = 0 ]; then
    say "all parts passed"
    exit 0
fi
say "FAILED"
exit 1
