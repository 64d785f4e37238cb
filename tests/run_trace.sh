#!/bin/sh
# The flight recorder (docs/flight-recorder.md), end to end with real processes:
#  1. stop: 3 ranks in an all-reduce loop, rank 1 SIGSTOPped (default algorithm: one-shot; then
#     the ring through the executor). Ranks 0 and 2 must time out and leave valid files whose
#     entries match the calls the loop made, the failed one last; tools/podccl-trace must name
#     rank 1 and that call.
#  2. mismatch: in call 5 rank 2 passes another count (then calls another collective); every rank
#     dumps; the tool must name ranks 0, 1 and rank 2 with both calls.
#  3. healthy: SIGUSR1 to one rank of a healthy job writes its last PODCCL_TRACE_OPS=16
#     operations, all done and as called (collectives and send/receive batches); rank 0's own
#     SIGUSR1 while a stream runs shows one operation started (step k of K, waiting on a peer)
#     and one queued; a rank that got no signal writes nothing.
# Needs python3 (the tool is python3): exits 77 (skip) without it.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
if [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/tests/test_trace" ]; then
    bin=$top_builddir/tests/test_trace
elif [ -x "$dir/test_trace" ]; then
    bin=$dir/test_trace
else
    echo "run_trace.sh: test_trace not found (set top_builddir or build it next to this script)"
    exit 1
fi
tool=$dir/../tools/podccl-trace
command -v python3 >/dev/null 2>&1 || { echo "run_trace.sh: no python3: skipped"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/podccl-trace-test.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
unset PODCCL_ALGO PODCCL_TRACE_OPS
failed=""
fail() {
    echo "run_trace.sh: FAIL: $*"
    failed="$failed
  $*"
}

# check.py MODE DIR [ARGS]: the JSON checks; prints what is wrong and exits 1.
cat >"$work/check.py" <<'EOF'
import glob, json, os, sys, time

def count_of(i):  # tests/test_trace.c: trace_count
    return 100 + 10 * (i % 97)

def load(d):
    files = {}
    for p in glob.glob(os.path.join(d, "podccl-trace.*.json")):
        with open(p) as f:
            j = json.load(f)  # a torn or partial file fails here
        assert j["format"] == "podccl-trace" and j["version"] == 1, p
        assert p.endswith(".%s.%d.json" % (j["host"], j["pid"])), "file name %s" % p
        assert len(j["comms"]) == 1, "%s: %d communicators" % (p, len(j["comms"]))
        c = j["comms"][0]
        assert c["nranks"] == 3 and c["rank"] not in files, p
        c["reason"] = j["reason"]
        files[c["rank"]] = c
    assert not glob.glob(os.path.join(d, ".*tmp")), "temporary file left in %s" % d
    return files

def times(e, lo, hi):
    t = [e["t_enqueue_us"], e.get("t_start_us", e["t_enqueue_us"]), e.get("t_end_us", hi)]
    assert lo <= t[0] <= t[1] <= t[2] <= hi, "timestamps %s not in [%d, %d]: %s" % (t, lo, hi, e)

def stop(d, lo, ring):
    f = load(d)
    assert sorted(f) == [0, 2], "files from ranks %s, want 0 and 2" % sorted(f)
    hi = int(time.time() * 1e6)
    lasts = set()
    for r, c in f.items():
        assert c["reason"] in ("timeout", "error"), c["reason"]
        ents = c["entries"]
        assert len(ents) == min(256, c["ops_recorded"]) and ents, "rank %d: %d" % (r, len(ents))
        for k, e in enumerate(ents):
            i = e["seq"] - 1
            assert e["coll_seq"] == e["seq"] and e["coll"] == "allreduce", e
            assert e["count"] == count_of(i) and e["bytes"] == 4 * count_of(i), e
            assert e["dtype"] == "float32" and e["op"] == "sum", e
            assert k == 0 or e["seq"] == ents[k - 1]["seq"] + 1, "rank %d: seq gap at %s" % (r, e)
            assert e["state"] == ("failed" if k == len(ents) - 1 else "done"), e
            assert e["algo"] == ("ring" if ring else e["algo"]), e
            times(e, lo, hi)
        last = ents[-1]
        assert last["error"] in ("podcclTimeout", "podcclRemoteError"), last
        assert last["t_end_us"] - last["t_start_us"] >= 2.5e6, "failed too early: %s" % last
        if ring:
            assert 0 <= last.get("step", -1) < last.get("steps", 0), "no step k of K: %s" % last
        lasts.add(last["seq"])
    # A survivor whose part of call s needed nothing more from rank 1 finishes it and waits in
    # s + 1 (the ring); nobody gets further.
    s = min(lasts)
    assert max(lasts) - s <= 1, "the survivors failed in calls too far apart: %s" % lasts
    waits = [1 in c["entries"][-1].get("waiting_on", []) or c["entries"][-1].get("blamed") == 1
             for c in f.values()]
    assert any(waits), "no survivor records waiting on rank 1"
    print("#%d allreduce(count %d, float32, sum)" % (s, count_of(s - 1)))

def mismatch(d, variant):
    f = load(d)
    assert sorted(f) == [0, 1, 2], "files from ranks %s" % sorted(f)
    for r, c in f.items():
        e = {x["coll_seq"]: x for x in c["entries"] if "coll_seq" in x}
        assert sorted(e)[:6] == [1, 2, 3, 4, 5, 6], "rank %d: collectives %s" % (r, sorted(e))
        for s in range(1, 6):
            assert e[s]["state"] == "done" and e[s]["count"] == count_of(s - 1), e[s]
        six = e[6]
        if r == 2 and variant == "coll":
            assert six["coll"] == "allgather" and six["count"] == 50, six
        else:
            assert six["coll"] == "allreduce" and six["count"] == 150 + (r == 2), six

def healthy(d, lo):
    f = load(d)
    assert sorted(f) == [0, 1], "files from ranks %s, want 0 (its own signal) and 1" % sorted(f)
    hi = int(time.time() * 1e6)
    one, zero = f[1], f[0]
    assert one["reason"] == "signal" and zero["reason"] == "signal"
    assert one["trace_ops"] == 16 and one["ops_recorded"] == 42, one["ops_recorded"]
    ents = one["entries"]
    assert [e["seq"] for e in ents] == list(range(27, 43)), [e["seq"] for e in ents]
    prev_end = lo
    for e in ents:
        i = e["seq"] - 1
        assert e["state"] == "done" and "waiting_on" not in e, e
        if i < 40 and i % 10 == 9:
            want = {"coll": "sendrecv", "p2p_seq": (i + 1) // 10, "send_to": [2],
                    "recv_from": [0], "send_bytes": 256, "recv_bytes": 256}
        else:
            count = count_of(i) if i < 40 else (300000 if i == 40 else 7)
            want = {"coll": "allreduce", "coll_seq": i + 1 - min(i, 40) // 10, "count": count,
                    "bytes": 4 * count, "dtype": "float32", "op": "sum", "algo": "ring"}
        for k, v in want.items():
            assert e.get(k) == v, "rank 1 seq %d: %s = %s, want %s" % (e["seq"], k, e.get(k), v)
        times(e, prev_end, hi)
        prev_end = e["t_end_us"]
    z = {e["seq"]: e for e in zero["entries"]}
    assert all(e["state"] == "done" for s, e in z.items() if s is not None and s < 41), z
    big = z.get(41)
    assert big and big["state"] == "started" and big["count"] == 300000, big
    assert 0 <= big.get("step", -1) < big.get("steps", 0) and big.get("waiting_on"), big
    q = z.get(None)
    assert q and q["state"] == "queued" and q["count"] == 7, "no queued entry: %s" % q

mode = sys.argv[1]
try:
    {"stop": lambda: stop(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "ring"),
     "mismatch": lambda: mismatch(sys.argv[2], sys.argv[3]),
     "healthy": lambda: healthy(sys.argv[2], int(sys.argv[3]))}[mode]()
except (AssertionError, KeyError, ValueError, TypeError, IndexError) as e:
    print("check %s: %s: %s" % (mode, type(e).__name__, e))
    sys.exit(1)
EOF
now_us() { python3 -c 'import time; print(int(time.time() * 1e6))'; }

# ---- 1. a stopped rank
for algo in auto ring; do
    d=$work/stop-$algo
    mkdir "$d"
    t0=$(now_us)
    echo "+ test_trace stop (PODCCL_ALGO=$algo)"
    if [ $algo = ring ]; then set -- env PODCCL_ALGO=allreduce:ring; else set -- env; fi
    "$@" PODCCL_TIMEOUT=3 PODCCL_TRACE_DIR="$d" "$bin" stop >"$work/out" 2>&1 ||
        { cat "$work/out"; fail "stop $algo: the job failed"; }
    call=$(python3 "$work/check.py" stop "$d" "$t0" $algo) ||
        { fail "stop $algo: $call"; continue; }
    python3 "$tool" "$d" >"$work/tool" 2>&1
    rc=$?
    sed 's/^/    | /' "$work/tool"
    [ $rc = 1 ] || fail "stop $algo: podccl-trace exited $rc, want 1"
    grep -q "^  STUCK rank 1: .* in collective $call" "$work/tool" ||
        fail "stop $algo: podccl-trace does not name rank 1 in $call"
done

# ---- 2. mismatched calls
for variant in count coll; do
    d=$work/mismatch-$variant
    mkdir "$d"
    echo "+ test_trace mismatch $variant"
    PODCCL_TIMEOUT=3 PODCCL_TRACE_DIR="$d" "$bin" mismatch $variant >"$work/out" 2>&1 ||
        { cat "$work/out"; fail "mismatch $variant: the job failed"; }
    msg=$(python3 "$work/check.py" mismatch "$d" $variant) || fail "mismatch $variant: $msg"
    python3 "$tool" "$d" >"$work/tool" 2>&1
    sed 's/^/    | /' "$work/tool"
    if [ $variant = count ]; then other="allreduce(count 151, float32, sum)"; else
        other="allgather(count 50, float32)"; fi
    want="MISMATCH at collective #6: ranks 0, 1 called allreduce(count 150, float32, sum);"
    grep -qF "$want rank 2 called $other" "$work/tool" ||
        fail "mismatch $variant: podccl-trace does not name both calls"
done

# ---- 3. SIGUSR1 to a healthy job
d=$work/healthy
sync=$work/sync
mkdir "$d" "$sync"
echo "+ test_trace healthy"
t0=$(now_us)
PODCCL_TRACE_OPS=16 PODCCL_ALGO=allreduce:ring PODCCL_TIMEOUT=20 PODCCL_TRACE_DIR="$d" \
    TRACE_SYNC="$sync" "$bin" healthy >"$work/out" 2>&1 &
job=$!
i=0
ready() { [ -f "$sync/ready.0" ] && [ -f "$sync/ready.1" ] && [ -f "$sync/ready.2" ]; }
while [ $i -lt 600 ] && ! ready; do
    sleep 0.1
    i=$((i + 1))
done
if [ -f "$sync/ready.1" ]; then
    pid1=$(cat "$sync/ready.1")
    kill -USR1 "$pid1"
    i=0
    while [ $i -lt 100 ] && ! ls "$d"/podccl-trace.*."$pid1".json >/dev/null 2>&1; do
        sleep 0.1
        i=$((i + 1))
    done
    sleep 0.2 # a rank that must not write has had the time to do it wrongly
else
    fail "healthy: the ranks never got ready"
fi
touch "$sync/go"
wait $job || { cat "$work/out"; fail "healthy: the job failed"; }
msg=$(python3 "$work/check.py" healthy "$d" "$t0") || fail "healthy: $msg"
python3 "$tool" -v "$d" >/dev/null 2>&1
[ $? -le 1 ] || fail "healthy: podccl-trace failed on the files"

if [ -n "$failed" ]; then
    echo "run_trace.sh: FAILED:$failed"
    exit 1
fi
echo "run_trace.sh: all checks passed"
