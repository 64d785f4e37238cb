#!/bin/bash
# Ranks on several "hosts" of this machine (PODCCL_HOSTID), started one process per rank through
# podccl's environment bootstrap, talking over the ofi transport (libfabric, loopback). Layouts
# where ranks of one host are not contiguous exercise the host-grouped ring order; every layout
# mixes shared memory (ranks of one host) with the network. The multi-host tests over real
# network namespaces are tests/run_netns.sh.
set -u
b=${top_builddir:-.}
bin="$b/tests/test_coll"
export PODCCL_NET=ofi PODCCL_TIMEOUT=${PODCCL_TIMEOUT:-60}
if ! grep -q '^#define HAVE_OFI 1' "$b/config.h" 2>/dev/null; then
    echo "SKIP: this build has no libfabric (configure did not find libfabric-dev)"
    exit 77
fi
fail=0
run() { # run "hostid of rank 0, rank 1, ..." [test_coll args]
    local hosts=($1) n=${#1} port=$((20000 + RANDOM % 30000)) pids=() r rc=0
    shift
    n=${#hosts[@]}
    local log
    log=$(mktemp -d)
    for ((r = 0; r < n; r++)); do
        PODCCL_RANK=$r PODCCL_NRANKS=$n PODCCL_COMM_ID=127.0.0.1:$port PODCCL_HOSTID=hosts-${hosts[$r]} \
            timeout 600 "$bin" --env "$@" >"$log/$r" 2>&1 &
        pids+=($!)
    done
    for ((r = 0; r < n; r++)); do
        wait "${pids[$r]}" || rc=1
    done
    for ((r = 0; r < n; r++)); do
        grep -q "rank $r of $n.*: PASS" "$log/$r" || { rc=1; echo "--- rank $r:"; tail -5 "$log/$r"; }
    done
    echo "layout [${hosts[*]}] $*: $([ $rc = 0 ] && echo PASS || echo FAIL)"
    rm -rf "$log"
    [ $rc = 0 ] || fail=1
}
run "a b a b c" --quick       # interleaved: ring order differs from rank order
run "x y y x" --quick         # two hosts, each with ranks at both ends of the rank order
PODCCL_OFI_EAGER_BYTES=0 run "a b a" --quick   # every message by RMA write
PODCCL_OFI_EAGER_BYTES=1073741824 run "a b" --quick   # every message as a tagged send
run "a b c"                   # full matrix, large messages, three hosts
exit $fail
