#!/bin/sh
# The soft-RoCE lane's checks, run inside the vm-run.sh guest(s) by run.sh. PODCCL_BUILD is the
# build tree (copied to the same path). One VM (rxeA on 10.9.0.1, rxeB on 10.9.0.2, two "hosts"
# told apart by PODCCL_HOSTID) or two VMs (rxe0 each, 10.9.1.1 and 10.9.1.2). Every job prints
# PASS or FAIL with its time; the exit code is the number of failed jobs.
B=${PODCCL_BUILD:?PODCCL_BUILD unset}
export LD_LIBRARY_PATH="$B/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PODCCL_NET=ib PODCCL_TIMEOUT=${PODCCL_TIMEOUT:-90}
# The real binary of a libtool program (the wrapper script would try to relink).
prog() { if [ -x "$B/$1/.libs/$2" ]; then echo "$B/$1/.libs/$2"; else echo "$B/$1/$2"; fi; }
TC=$(prog tests test_coll)
BENCH=$(prog bench ccl-bench)
fails=0
port=29400
lane_t0=$(date +%s)

# Prints the last lines of every log of job $1.
show_logs() {
  for f in /tmp/"$1".*.log; do
    echo "---- $f"
    tail -n 25 "$f"
  done
}

# job NAME LIMIT NRANKS "RANK:HOSTID:HCA ..." CMD...: starts the listed ranks of an NRANKS-rank
# job (the ones on this VM) with PODCCL_* set for env init, rendezvous at $COMM_IP; HCA "-"
# leaves PODCCL_IB_HCA unset (automatic choice), else it is matched exactly (=HCA). Sets
# job_rc to 0 when every rank exited 0, else to the first non-zero exit code.
job() {
  name=$1 limit=$2 n=$3 specs=$4
  shift 4
  port=$((port + 1))
  t0=$(date +%s)
  pids=""
  for s in $specs; do
    r=${s%%:*} rest=${s#*:}
    h=${rest%%:*} d=${rest#*:}
    if [ "$d" = - ]; then hca=""; else hca="=$d"; fi
    # Two VMs share no home directory: the job's secret comes from the environment.
    env PODCCL_RANK="$r" PODCCL_NRANKS="$n" PODCCL_COMM_ID="$COMM_IP:$port" PODCCL_HOSTID="$h" \
      PODCCL_SECRET="softroce-lane-$name" PODCCL_IB_HCA="$hca" timeout "$limit" "$@" \
      > "/tmp/$name.$r.log" 2>&1 &
    pids="$pids $!"
  done
  job_rc=0
  for p in $pids; do
    wait "$p"
    rc=$?
    [ $job_rc != 0 ] || job_rc=$rc
  done
  job_secs=$(($(date +%s) - t0))
}

# expect_pass NAME [LABEL]: reports the job NAME that just ran.
expect_pass() {
  if [ "$job_rc" = 0 ]; then
    echo "PASS $1${2:+ $2} (${job_secs}s)"
  else
    echo "FAIL $1${2:+ $2} (exit $job_rc after ${job_secs}s)"
    show_logs "$1"
    fails=$((fails + 1))
  fi
}

bench_args="-b 8 -e 1M -f 4 -n 3 -w 1 -c 1"

if [ "$SOFTROCE_VMS" = 1 ]; then
  COMM_IP=10.9.0.1
  # 1. two hosts, one rank each: everything crosses rxeB <-> rxeA.
  job ib2 300 2 "0:a:rxeA 1:b:rxeB" "$TC" --env --quick
  expect_pass ib2
  # Point to point: sizes from 0 to many slots, and a send longer than its receive.
  if [ -x "$B/tests/softroce-ib-p2p" ]; then
    job p2p 120 2 "0:a:rxeA 1:b:rxeB" env PODCCL_TIMEOUT=120 "$B/tests/softroce-ib-p2p"
    expect_pass p2p
    grep -h "oversized" /tmp/p2p.*.log | cut -c1-250
  else
    echo "SKIP p2p: tests/softroce-ib-p2p not built (static-only build)"
  fi
  # The full matrix (sizes up to 6 MiB: messages of many slots) on two ranks.
  job ib2full 400 2 "0:a:rxeA 1:b:rxeB" "$TC" --env
  expect_pass ib2full
  # 2. four ranks, two per host: shm inside each host, ib between them.
  job ib4 400 4 "0:a:rxeA 1:a:rxeA 2:b:rxeB 3:b:rxeB" "$TC" --env --quick
  expect_pass ib4
  # 3. ccl-bench with bit-for-bit checks, one rank per process.
  for coll in allreduce allgather alltoall; do
    job "bench-$coll" 200 2 "0:a:rxeA 1:b:rxeB" "$BENCH" "$coll" $bench_args
    expect_pass "bench-$coll"
  done
  # 4. automatic device and GID choice (no PODCCL_IB_HCA: both ranks take the first device),
  #    small chunks so that messages are split into many slot-sized pieces.
  job auto 200 2 "0:a:- 1:b:-" env PODCCL_CHUNK_BYTES=4096 PODCCL_DEBUG=INFO \
    PODCCL_DEBUG_SUBSYS=NET "$BENCH" allreduce -b 8 -e 256K -f 8 -n 2 -w 1 -c 1
  expect_pass auto
  grep -h "listens on" /tmp/auto.*.log | head -2
  # A forced GID index: the valid one (1, RoCE v2 IPv4 on rxe), then one that does not exist.
  job gid1 120 2 "0:a:rxeA 1:b:rxeB" env PODCCL_IB_GID_INDEX=1 "$BENCH" allgather -b 8 -e 64K \
    -f 8 -n 2 -w 1 -c 1
  expect_pass gid1
  job badgid 120 2 "0:a:rxeA 1:b:rxeB" env PODCCL_IB_GID_INDEX=77 "$TC" --env --quick
  if [ "$job_rc" != 0 ] && [ "$job_rc" != 124 ] && grep -q "PODCCL_IB_GID_INDEX=77" /tmp/badgid.*.log; then
    echo "PASS badgid (${job_secs}s)"
  else
    echo "FAIL badgid (exit $job_rc): expected an init error naming PODCCL_IB_GID_INDEX=77"
    show_logs badgid
    fails=$((fails + 1))
  fi
  # Ranks whose staging geometry differs (PODCCL_MAX_INFLIGHT) refuse to connect, with a hint.
  job geom 120 2 "0:a:rxeA 1:b:rxeB" sh -c \
    '[ "$PODCCL_RANK" = 0 ] && export PODCCL_MAX_INFLIGHT=4; exec "$0" --env --quick' "$TC"
  if [ "$job_rc" != 0 ] && [ "$job_rc" != 124 ] && [ "$job_secs" -lt 30 ] &&
    [ "$(grep -l "PODCCL_MAX_INFLIGHT" /tmp/geom.*.log | wc -l)" = 2 ]; then
    echo "PASS geom (${job_secs}s)"
  else
    echo "FAIL geom (exit $job_rc, ${job_secs}s): expected both ranks to fail init at once naming PODCCL_MAX_INFLIGHT"
    show_logs geom
    fails=$((fails + 1))
  fi
  # 5. a PODCCL_IB_HCA that matches nothing fails init with the reason, and does not hang.
  job nohca 120 2 "0:a:nosuchdev 1:b:nosuchdev" "$TC" --env --quick
  if [ "$job_rc" != 0 ] && [ "$job_rc" != 124 ] && grep -q "no usable RDMA port" /tmp/nohca.*.log; then
    echo "PASS nohca (${job_secs}s, refused: $(grep -ho 'no usable RDMA port[^(]*' /tmp/nohca.*.log | head -1))"
  else
    echo "FAIL nohca (exit $job_rc): expected an init error naming 'no usable RDMA port'"
    show_logs nohca
    fails=$((fails + 1))
  fi
  # 6. a peer killed mid-run: the survivor fails with an error naming it, well before
  #    PODCCL_TIMEOUT (the transport sees the disconnect or the dead queue pair).
  (
    job kill 150 2 "0:a:rxeA" env PODCCL_TIMEOUT=200 "$BENCH" allreduce -b 64K -e 64K \
      -n 100000 -w 1 -c 0
    exit "$job_rc"
  ) &
  survivor=$!
  env PODCCL_TIMEOUT=200 PODCCL_RANK=1 PODCCL_NRANKS=2 PODCCL_COMM_ID="$COMM_IP:$((port + 1))" \
    PODCCL_HOSTID=b PODCCL_SECRET=softroce-lane-kill PODCCL_IB_HCA="=rxeB" "$BENCH" allreduce -b 64K -e 64K -n 100000 -w 1 -c 0 \
    > /tmp/kill.1.log 2>&1 &
  victim=$!
  sleep 15
  kill -9 $victim 2> /dev/null
  t0=$(date +%s)
  wait $survivor
  srv_rc=$?
  port=$((port + 1))
  secs=$(($(date +%s) - t0))
  if [ $srv_rc != 0 ] && [ $secs -lt 100 ] && grep -q "rank 1" /tmp/kill.0.log; then
    echo "PASS kill (survivor failed ${secs}s after the kill: $(grep -h 'rank 1' /tmp/kill.0.log | head -1 | cut -c1-300))"
  else
    echo "FAIL kill (survivor exit $srv_rc after ${secs}s)"
    show_logs kill
    fails=$((fails + 1))
  fi
  # 7. libfabric's verbs;ofi_rxm provider over the same devices, once the ofi transport exists.
  if command -v fi_info > /dev/null 2>&1; then
    job ofi2 300 2 "0:a:rxeA 1:b:rxeB" env PODCCL_NET=ofi PODCCL_OFI_PROVIDER="verbs;ofi_rxm" \
      FI_UNIVERSE_SIZE=4 "$TC" --env --quick
    if grep -q "not implemented" /tmp/ofi2.*.log; then
      echo "SKIP ofi2: the ofi transport is not implemented in this build"
    else
      expect_pass ofi2
    fi
  else
    echo "SKIP ofi2: no fi_info in the guest (libfabric not installed on the host)"
  fi
else
  # Two VMs: ranks 0 and 1 on node 0, rank 2 on node 1, every rank on its VM's rxe0.
  COMM_IP=10.9.1.1
  [ "$SOFTROCE_NODE" = 1 ] && sleep 1 # let node 0's rank 0 listen first
  if [ "$SOFTROCE_NODE" = 0 ]; then specs="0:vm0:rxe0 1:vm0:rxe0"; else specs="2:vm1:rxe0"; fi
  job vm2 400 3 "$specs" "$TC" --env --quick
  expect_pass vm2 "(node $SOFTROCE_NODE)"
  if [ "$SOFTROCE_NODE" = 0 ]; then specs="0:vm0:rxe0"; else specs="1:vm1:rxe0"; fi
  job vm2-bench 200 2 "$specs" "$BENCH" allreduce $bench_args
  expect_pass vm2-bench "(node $SOFTROCE_NODE)"
fi
echo "guest-tests: $fails failed, $(($(date +%s) - lane_t0))s"
[ $fails = 0 ]
