#!/bin/bash
# run_tiers.sh: podccl on a two-tier cluster of namespace hosts (tests/netns/tiers.sh): 2 cabinets
# of 2 hosts; each host has a link into its cabinet's bridge (eth0) and one into the spine (its
# rail to the other cabinet), one address, and /32 routes over the spine to the other cabinet.
# Every part runs over PODCCL_NET=ofi with PODCCL_SOCKET_IFNAME=eth0 and PODCCL_TOPO_FILE naming
# the cluster's topology file (cabinets by UTS host name). Parts, each with its own verdict:
#   a. 2 ranks per host in host order (ranks 0,1 on host 0, 2,3 on host 1, ...), podccl's own
#      environment bootstrap (PODCCL_RANK/NRANKS/COMM_ID, one process per rank): tests/test_coll
#      --env --quick must PASS on every rank;
#   b. the same with rank r on host r % 4, so that rank order does not follow the hosts (every
#      pair of neighbouring ranks is on two hosts, half of them in two cabinets);
#   c. uneven: cabinet 0 = hosts with 3 and 1 ranks, cabinet 1 = hosts with 2 and 2 (3+1+2+2);
#   d. layout a started by Open MPI's mpirun (hostfile slots 2/2/2/2, tests/netns/rsh-agent.sh);
#      skipped, said so, without Open MPI's mpirun;
#   e. layout a, three checks:
#      topo:  `ccl-bench allreduce --topo` exits 0 on every rank and rank 0 prints the levels of
#             the file (a line with "cabinet", one with "cluster", case-insensitive);
#      rails: links shaped (cabinet 1gbit, spine 250mbit), `ccl-bench allreduce -c 1 -b 1M -e 4M
#             -f 4` with the automatic choice: exit 0, #wrong 0, and EVERY host's spine link must
#             have carried data both ways: a rail-parallel hierarchy sends the cabinets' exchange
#             over all k rails of a cabinet at once (2(g-1)/g x S/k each), while a flat ring
#             sends over 2 of the 4 rails only, one way (the other way carries its TCP ACKs, ~1%
#             of the data). Pass: each host's spine tx and rx are >= S_max/4 and >= 1/4 of the
#             busiest spine's (balanced rails). Per-link byte counts are printed;
#      ring:  the same run with PODCCL_ALGO=allreduce:ring: exit 0, #wrong 0 (bytes printed).
# a-d also check every rank's INFO line (its host, the ranks there, 4 hosts), that every host's
# links carried > 1 MB each way and the spine > 1 MB in all (data crossed the network and the
# cabinets; shared memory alone would not). Links are unshaped for a-d (fast); nothing is timed.
# The topology file declares cabinet 1gbit (0.125 GB/s) and spine 250mbit (0.03125 GB/s) in
# every part, shaped or not, so the library sees the same tiers.
#
# Exits 0 if every part that ran passed, 1 if one failed, 77 (automake's SKIP) with the reason if
# namespaces can't be made here (not root, no iproute2) or the build has no libfabric.
# Environment: top_builddir (set by make check) or BUILD: the build tree; PODCCL_TIMEOUT (default
# 60; make check sets 30); PODCCL_OFI_PROVIDER, PODCCL_SHM_SPIN and FI_* pass through to the
# ranks, PODCCL_ALGO to parts a-d; MPIRUN (Open MPI's mpirun; "no" skips part d);
# NETNS_KEEP_LOGS=DIR copies the logs there. About 1.5 minutes on 2 cores.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns/tiers.sh
. "$here/netns/tiers.sh"

build=${top_builddir:-${BUILD:-}}
[ -n "$build" ] || build=$here/..
build=$(cd "$build" && pwd) || exit 1
test_coll=$build/tests/test_coll
ccl=$build/bench/ccl-bench
for b in "$test_coll" "$ccl"; do
    if [ ! -x "$b" ]; then
        echo "run_tiers.sh: $b not built (make check builds it; or set top_builddir/BUILD)"
        exit 1
    fi
done
if [ -f "$build/config.h" ] && ! grep -q '^#define HAVE_OFI 1' "$build/config.h"; then
    netns_skip "this build has no libfabric transport (configure found no libfabric)"
fi

to=${PODCCL_TIMEOUT:-60}
export PODCCL_NET=ofi PODCCL_TIMEOUT=$to PODCCL_SOCKET_IFNAME=eth0
# Rank, size, host identity and topology come from each part, never from the caller.
unset PODCCL_RANK PODCCL_NRANKS PODCCL_COMM_ID PODCCL_HOSTID PODCCL_DEBUG_FILE PODCCL_TOPO_FILE
tmp=$(mktemp -d /tmp/run_tiers.XXXXXX) || exit 1
keep() { [ -z "${NETNS_KEEP_LOGS:-}" ] || { mkdir -p "$NETNS_KEEP_LOGS" && cp -r "$tmp"/. "$NETNS_KEEP_LOGS"/; }; }
netns_atexit "keep; rm -rf '$tmp'"
port=$((30000 + $$ % 20000))
verdicts=""
failed=0
t_start=$(date +%s)

say() { echo "run_tiers.sh: $*"; }
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

# set_layout R0 R1 ...: rank_host[r] = host of rank r; layout[h] = ranks on host h; nr.
set_layout() {
    local h
    rank_host=("$@")
    nr=$#
    layout=()
    for ((h = 0; h < TIERS_NH; h++)); do layout[h]=0; done
    for h in "$@"; do layout[h]=$((layout[h] + 1)); done
}

# run_ranks TAG LIMIT CMD...: one process per rank (rank r on host rank_host[r]) through podccl's
# environment bootstrap, with the words of the array xenv added to its environment; rank r's
# output in $tmp/TAG.r.out and .err. Waits for all (LIMIT seconds in all, then kills: "hang");
# rcs[r] is rank r's exit status, why lists the ranks that did not exit 0.
run_ranks() {
    local tag=$1 limit=$2 r h deadline pids=()
    shift 2
    port=$((port + 1))
    local commid=${TIERS_ADDR[rank_host[0]]}:$port
    for ((r = 0; r < nr; r++)); do
        h=${rank_host[r]}
        netns_cmd "$h"
        echo "+ [${TIERS_HOST[h]}] ${xenv[*]}${xenv[*]:+ }PODCCL_RANK=$r PODCCL_NRANKS=$nr PODCCL_COMM_ID=$commid ${*/#$build\//}"
        "${NETNS_CMD[@]}" env "${xenv[@]}" PODCCL_RANK=$r PODCCL_NRANKS=$nr PODCCL_COMM_ID="$commid" \
            "$@" >"$tmp/$tag.$r.out" 2>"$tmp/$tag.$r.err" &
        pids[r]=$!
    done
    deadline=$(($(date +%s) + limit))
    rcs=()
    for ((r = 0; r < nr; r++)); do
        wait_until "${pids[r]}" "$deadline"
        rcs[r]=$rc
        if [ "$rc" = hang ]; then
            why="$why rank $r hung (killed after $limit s);"
        elif [ "$rc" != 0 ]; then
            why="$why rank $r exit $rc;"
        fi
    done
}

# show_failed TAG: the last lines of the logs of every rank whose exit status was not 0.
show_failed() {
    local r
    for ((r = 0; r < nr; r++)); do
        [ "${rcs[r]}" = 0 ] || show "$tmp/$1.$r.err" "$tmp/$1.$r.out"
    done
}

# check_layout FILE...: every rank 0..nr-1 must have logged its podccl INFO line with its host's
# name, the rank count of that host and the host count (src/topo.c).
check_layout() {
    local r h line bad="" nh=0
    for ((h = 0; h < TIERS_NH; h++)); do [ "${layout[h]}" = 0 ] || nh=$((nh + 1)); done
    for ((r = 0; r < nr; r++)); do
        h=${rank_host[r]}
        # "..., K hosts)" or, with levels counted, "..., K hosts, L levels)"
        line=$(grep -h -o "rank $r of $nr on host [^ ]* ([0-9]* of [0-9]* local ranks, [0-9]* hosts[,)]" \
            "$@" | head -n 1)
        if [ -z "$line" ]; then
            bad="$bad rank $r: no INFO line 'rank $r of $nr on host ...' (src/topo.c);"
        elif [ "$line" != "rank $r of $nr on host ${TIERS_HOST[h]} (${line#*\(}" ] ||
            ! echo "$line" | grep -q "of ${layout[h]} local ranks, $nh hosts[,)]\$"; then
            bad="$bad rank $r: '$line', expected host ${TIERS_HOST[h]} with ${layout[h]} local ranks of $nh hosts;"
        fi
    done
    [ -z "$bad" ] && return 0
    echo "$bad" | tr ';' '\n' | sed '/^$/d; s/^ */  layout: /'
    return 1
}

# links_used MIN SNAPSHOT...: prints the bytes per link since SNAPSHOT (tiers_counters); every
# host must have sent and received >= MIN over its two links together, and the spine links
# together must have carried >= MIN: the data crossed the network and the cabinets.
links_used() {
    local min=$1 i tx rx spine=0 ok=0
    shift
    tiers_link_report "$@"
    for ((i = 0; i < TIERS_NH; i++)); do
        tx=$((TIERS_DELTA[4 * i] + TIERS_DELTA[4 * i + 2]))
        rx=$((TIERS_DELTA[4 * i + 1] + TIERS_DELTA[4 * i + 3]))
        spine=$((spine + TIERS_DELTA[4 * i + 2]))
        [ "$tx" -ge "$min" ] && [ "$rx" -ge "$min" ] || { echo "  host $i: less than $min B each way"; ok=1; }
    done
    [ "$spine" -ge "$min" ] || { echo "  the spine links carried $spine B in all"; ok=1; }
    return $ok
}

# check_test_coll TAG FILE...: every rank printed its PASS line in FILEs (rank outputs).
check_test_coll() {
    local r
    for ((r = 0; r < nr; r++)); do
        [ "${rcs[r]:-0}" = 0 ] || continue # its exit status is reported already
        grep -q "test_coll --env: rank $r of $nr quick .*: PASS" "$@" || why="$why rank $r printed no PASS;"
    done
}

# check_bench FILE MINROWS: ccl-bench's output (rank 0) must have MINROWS result rows, #wrong 0
# in every row and the footer saying so.
check_bench() {
    local o=$1 rows badrows
    rows=$(awk '!/^#/ && NF >= 13' "$o" | wc -l)
    badrows=$(awk '!/^#/ && NF >= 13 && ($9 != 0 || $13 != 0)' "$o" | wc -l)
    [ "$rows" -ge "$2" ] || why="$why $rows result rows (expected $2);"
    [ "$badrows" = 0 ] || why="$why $badrows rows with wrong values;"
    grep -q '^# Out of bounds values : 0 OK' "$o" || why="$why no '# Out of bounds values : 0 OK';"
}

# env_part PART TITLE R0 R1 ...: test_coll --env --quick with rank r on host Rr.
env_part() {
    local part=$1 title=$2 before
    shift 2
    set_layout "$@"
    say "part $part: $title: ranks on hosts ${rank_host[*]} (host ranks ${layout[*]}), environment bootstrap"
    before=$(tiers_counters)
    why=""
    # shellcheck disable=SC2034 # xenv is read by run_ranks
    xenv=(PODCCL_DEBUG=INFO PODCCL_DEBUG_SUBSYS=^TUNE)
    run_ranks "$part" 240 "$test_coll" --env --quick
    cat "$tmp/$part".*.out
    # What podccl made of the topology file (rank 0 logs it at INFO), for the reader.
    awk '/ podccl INFO topology:/ { f = 1; print "  rank 0: podccl topology:"; next }
        f && / podccl / { exit } f && NF { print "  rank 0: " $0 }' "$tmp/$part.0.err"
    check_test_coll "$tmp/$part".*.out
    check_layout "$tmp/$part".*.err || why="$why wrong layout;"
    # shellcheck disable=SC2086 # the snapshot is a list of numbers
    links_used $min_bytes $before || why="$why links carried too little;"
    if [ -z "$why" ]; then
        verdict "$part" PASS "$title: $nr ranks on 4 hosts (${layout[*]}), every rank PASS"
    else
        verdict "$part" FAIL "$why"
        show_failed "$part"
    fi
}

# ---------------------------------------------------------------------------------------------
say "2 cabinets x 2 hosts (network namespaces), PODCCL_NET=ofi PODCCL_SOCKET_IFNAME=eth0 PODCCL_TIMEOUT=$to${PODCCL_OFI_PROVIDER:+ PODCCL_OFI_PROVIDER=$PODCCL_OFI_PROVIDER}"
tiers_up 2x2x2 || { say "could not set up the cluster"; exit 1; }
for ((c = 0; c < TIERS_NC; c++)); do
    hs=""
    for i in ${TIERS_CAB_HOSTS[c]}; do hs="$hs ${TIERS_HOST[i]} (${TIERS_ADDR[i]}, spine ${TIERS_SPINE_ADDR[i]})"; done
    say "cabinet $c: ${TIERS_CAB_SUBNET[c]} on bridge ${TIERS_CAB_BRIDGE[c]} (root ${TIERS_CAB_BRADDR[c]}):$hs"
done
say "spine: $TIERS_SPINE_SUBNET on bridge $TIERS_SPINE_BRIDGE; links unshaped for parts a-d"
topo=$tmp/topo.json
tiers_topo_file "$topo" 1gbit 250mbit
export PODCCL_TOPO_FILE=$topo
say "PODCCL_TOPO_FILE=$topo:"
sed 's/^/  /' "$topo"
# test_coll --quick moves far more than this across hosts; the bootstrap alone far less.
min_bytes=1000000

env_part a "host order" 0 0 1 1 2 2 3 3
env_part b "round robin (rank r on host r % 4)" 0 1 2 3 0 1 2 3
env_part c "uneven 3+1 | 2+2" 0 0 0 1 2 2 3 3

# d: Open MPI's mpirun through the rsh agent, layout a
set_layout 0 0 1 1 2 2 3 3
if ! netns_have_mpirun; then
    verdict d SKIP "no Open MPI mpirun (MPIRUN=${MPIRUN:-mpirun})"
else
    port=$((port + 1))
    commid=${TIERS_ADDR[0]}:$port
    tiers_mpirun "$tmp/hostfile" "${layout[@]}"
    say "part d: mpirun, hostfile $(tr '\n' ' ' <"$tmp/hostfile")"
    # The launcher first: its layout on its own, so that a failure here is told apart from one
    # of podccl's.
    echo "+ ${NETNS_MPIRUN[*]} -np $nr sh -c 'echo \$(hostname) \$OMPI_COMM_WORLD_RANK ...'"
    # shellcheck disable=SC2016 # expanded by the ranks' shells
    timeout -k 5 60 "${NETNS_MPIRUN[@]}" -np "$nr" sh -c \
        'echo "layout: rank $OMPI_COMM_WORLD_RANK on $(hostname) local $OMPI_COMM_WORLD_LOCAL_RANK of $OMPI_COMM_WORLD_LOCAL_SIZE"' \
        >"$tmp/d.layout" 2>&1 &
    netns_track $!
    netns_wait $!
    rc=$?
    sort -k3n "$tmp/d.layout"
    why=""
    [ $rc = 0 ] || why="mpirun exit $rc;"
    for ((r = 0; r < nr; r++)); do
        h=${rank_host[r]}
        grep -q "^layout: rank $r on ${TIERS_HOST[h]} local [0-9]* of ${layout[h]}\$" "$tmp/d.layout" ||
            why="$why rank $r not on ${TIERS_HOST[h]} with ${layout[h]} local ranks;"
    done
    if [ -n "$why" ]; then
        verdict d FAIL "Open MPI across the namespaces: $why"
        show "$tmp/d.layout"
    else
        before=$(tiers_counters)
        echo "+ ${NETNS_MPIRUN[*]} -x PODCCL_* -np $nr $test_coll --env --quick   (PODCCL_COMM_ID=$commid)"
        fwd=(-x PODCCL_NET -x PODCCL_TIMEOUT -x PODCCL_SOCKET_IFNAME -x PODCCL_TOPO_FILE
            -x PODCCL_COMM_ID="$commid" -x PODCCL_DEBUG=INFO -x PODCCL_DEBUG_SUBSYS=^TUNE)
        for v in PODCCL_OFI_PROVIDER PODCCL_ALGO PODCCL_SHM_SPIN $(env | sed -n 's/^\(FI_[A-Z0-9_]*\)=.*/\1/p'); do
            [ -z "${!v+x}" ] || fwd+=(-x "$v")
        done
        timeout -k 5 240 "${NETNS_MPIRUN[@]}" "${fwd[@]}" -np "$nr" "$test_coll" --env --quick \
            >"$tmp/d.out" 2>"$tmp/d.err" &
        netns_track $!
        netns_wait $!
        rc=$?
        grep -h "^test_coll\|^rank" "$tmp/d.out"
        [ $rc = 0 ] || why="mpirun exit $rc$([ $rc = 124 ] && echo ' (hung: killed after 240 s)');"
        rcs=()
        check_test_coll "$tmp/d.out"
        check_layout "$tmp/d.err" || why="$why wrong layout;"
        # shellcheck disable=SC2086
        links_used $min_bytes $before || why="$why links carried too little;"
        if [ -z "$why" ]; then
            verdict d PASS "$nr ranks on 4 hosts (2+2 | 2+2) under mpirun, every rank PASS"
        else
            verdict d FAIL "$why"
            show "$tmp/d.out" "$tmp/d.err"
        fi
    fi
fi

# ---------------------------------------------------------------------------------------------
# e: ccl-bench --topo, then all-reduce over shaped links: the rails, and the ring still right.
set_layout 0 0 1 1 2 2 3 3
say "part e (topo): ccl-bench allreduce --topo, layout a"
why=""
xenv=()
# A collective is named too: ccl-bench's parser wants one first, and --topo exits before it runs.
run_ranks e.topo 60 "$ccl" allreduce --topo
sed 's/^/  /' "$tmp/e.topo.0.out"
# Loose on purpose (the format is ccl-bench's to choose): rank 0's output, either stream, must
# name both levels, e.g. "level 1 cabinet ..." and "level 2 cluster ...".
grep -qi cabinet "$tmp/e.topo.0.out" "$tmp/e.topo.0.err" || why="$why rank 0 printed no line naming the level 'cabinet';"
grep -qi cluster "$tmp/e.topo.0.out" "$tmp/e.topo.0.err" || why="$why rank 0 printed no line naming the level 'cluster';"
if [ -z "$why" ]; then
    verdict "e (topo)" PASS "ccl-bench allreduce --topo exit 0 on every rank, levels cabinet and cluster printed"
else
    verdict "e (topo)" FAIL "$why"
    show_failed e.topo
    [ "${rcs[0]}" != 0 ] || show "$tmp/e.topo.0.err"
fi

tiers_rate 1gbit 250mbit || { say "could not shape the links"; exit 1; }
say "links shaped: cabinet $TIERS_CAB_RATE, spine $TIERS_SPINE_RATE (tbf, both directions)"
smax=$((4 * 1024 * 1024))
sweep=(allreduce -c 1 -b 1M -e 4M -f 4 -n 5 -w 1)

# e (rails): the automatic choice
say "part e (rails): ccl-bench ${sweep[*]}, automatic algorithm"
before=$(tiers_counters)
why=""
xenv=(-u PODCCL_ALGO)
run_ranks e.auto 120 "$ccl" "${sweep[@]}"
grep -v '^#  *\((B)\|size\|out-of-place\)\|^#$' "$tmp/e.auto.0.out"
check_bench "$tmp/e.auto.0.out" 2
# shellcheck disable=SC2086
tiers_link_report $before
maxtx=0 maxrx=0
for ((i = 0; i < TIERS_NH; i++)); do
    [ "${TIERS_DELTA[4 * i + 2]}" -le "$maxtx" ] || maxtx=${TIERS_DELTA[4 * i + 2]}
    [ "${TIERS_DELTA[4 * i + 3]}" -le "$maxrx" ] || maxrx=${TIERS_DELTA[4 * i + 3]}
done
for ((i = 0; i < TIERS_NH; i++)); do
    tx=${TIERS_DELTA[4 * i + 2]} rx=${TIERS_DELTA[4 * i + 3]}
    if [ "$tx" -lt $((smax / 4)) ] || [ "$rx" -lt $((smax / 4)) ] ||
        [ $((4 * tx)) -lt "$maxtx" ] || [ $((4 * rx)) -lt "$maxrx" ]; then
        why="$why host $i's spine idle or light (sent $tx B, received $rx B; busiest $maxtx/$maxrx B);"
    fi
done
if [ -z "$why" ]; then
    verdict "e (rails)" PASS "allreduce 1M..4M #wrong 0, every host's spine link carried data both ways"
else
    verdict "e (rails)" FAIL "$why"
    show_failed e.auto
fi

# e (ring): a forced flat ring must still be right on the same cluster
say "part e (ring): PODCCL_ALGO=allreduce:ring ccl-bench ${sweep[*]}"
before=$(tiers_counters)
why=""
xenv=(PODCCL_ALGO=allreduce:ring)
run_ranks e.ring 120 "$ccl" "${sweep[@]}"
grep -v '^#  *\((B)\|size\|out-of-place\)\|^#$' "$tmp/e.ring.0.out"
check_bench "$tmp/e.ring.0.out" 2
# shellcheck disable=SC2086
tiers_link_report $before
if [ -z "$why" ]; then
    verdict "e (ring)" PASS "allreduce 1M..4M with PODCCL_ALGO=allreduce:ring, #wrong 0"
else
    verdict "e (ring)" FAIL "$why"
    show_failed e.ring
fi
tiers_down

echo "run_tiers.sh: verdicts:$verdicts"
say "took $(($(date +%s) - t_start)) s"
if [ $failed = 0 ]; then
    say "all parts passed"
    exit 0
fi
say "FAILED"
exit 1
