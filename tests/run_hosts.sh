#!/bin/bash
# Ranks on several "hosts" of this machine (PODCCL_HOSTID), started one process per rank through
# podccl's environment bootstrap, talking over the ofi transport (libfabric, loopback). Layouts
# where ranks of one host are not contiguous exercise the host-grouped ring order; every layout
# mixes shared memory (ranks of one host) with the network. Then the same with topology levels
# from a file (cabinets of hosts), every algorithm forced in turn, and a bad file. The multi-host
# tests over real network namespaces are tests/run_netns.sh and tests/run_tiers.sh.
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
    echo "layout [${hosts[*]}]${PODCCL_ALGO:+ PODCCL_ALGO=$PODCCL_ALGO} $*: $([ $rc = 0 ] && echo PASS || echo FAIL)"
    rm -rf "$log"
    [ $rc = 0 ] || fail=1
}
run "a b a b c" --quick       # interleaved: ring order differs from rank order
run "x y y x" --quick         # two hosts, each with ranks at both ends of the rank order
PODCCL_OFI_EAGER_BYTES=0 run "a b a" --quick   # every message by RMA write
PODCCL_OFI_EAGER_BYTES=1073741824 run "a b" --quick   # every message as a tagged send
run "a b c"                   # full matrix, large messages, three hosts

# Topology levels from a file (hosts named by PODCCL_HOSTID): cabinets {a, b} and {c, d} under a
# cluster level. Uneven 3+1+2+2 ranks per host, and ranks placed so that rank order does not
# follow the hosts; every algorithm forced in turn, then the model's choice.
topo=$(mktemp)
cat >"$topo" <<'JSON'
{"levels": [
  {"name": "cabinet", "bandwidth_GBps": 0.125, "latency_us": 50,
   "groups": [{"name": "cab0", "hosts": ["hosts-a", "hosts-b"]},
              {"name": "cab1", "hosts": ["hosts-c", "hosts-d"]}]},
  {"name": "cluster", "bandwidth_GBps": 0.03125, "latency_us": 100}
]}
JSON
export PODCCL_TOPO_FILE=$topo
for algo in "" hier rhd rd tree bruck ring; do
    PODCCL_ALGO=$algo run "a a a b c c d d" --quick
done
PODCCL_ALGO=hier run "c a d b a c b a"
PODCCL_ALGO= run "d c b a d c b a" --quick
# A supernode: a level with memory semantics over hosts a and b (one kernel here), so shared
# memory, one-shot and single copy serve ranks of different hosts.
cat >"$topo" <<'JSON'
{"levels": [{"name": "supernode", "bandwidth_GBps": 8, "latency_us": 1, "memory_semantics": true,
  "groups": [{"name": "sn0", "hosts": ["hosts-a", "hosts-b"]}]}]}
JSON
for algo in "" direct cma; do
    PODCCL_ALGO=$algo PODCCL_DEBUG=${PODCCL_DEBUG:-NONE} run "a b b a" --quick $([ "$algo" = direct ] && echo --algo-forced-direct)
done
# A file that does not place a host of the job must fail init on every rank, naming the file.
bad=$(mktemp)
sed 's/"hosts-d"/"hosts-x"/' "$topo" >"$bad"
log=$(mktemp)
PODCCL_TOPO_FILE=$bad PODCCL_RANK=0 PODCCL_NRANKS=1 PODCCL_HOSTID=hosts-d PODCCL_COMM_ID=127.0.0.1:$((20000 + RANDOM % 30000)) \
    "$bin" --env --quick >"$log" 2>&1
if grep -q "init failed: invalid argument.*$bad:[0-9]*:.*hosts-d.*in none of its groups" "$log"; then
    echo "bad topology file: refused: PASS"
else
    echo "bad topology file: FAIL"; cat "$log"; fail=1
fi
rm -f "$topo" "$bad" "$log"
exit $fail
