#!/bin/sh
# bench/plot.py draws valid PNGs from two podccl-bench/1 JSON files (made here by hand, so that the
# test needs no MPI), one per library, and fails on a malformed file. Skips (77) without matplotlib.
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
py=""
for p in ${PYTHON:-} /usr/bin/python3 python3; do
    if "$p" -c 'import matplotlib' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with matplotlib (apt-get install python3-matplotlib)"; exit 77; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# mkjson FILE LIBRARY SCALE CEILING: allreduce and allgather, 8 B .. 4 MiB, both in-place modes
mkjson() {
    "$py" - "$@" <<'EOF'
import json, sys
path, lib, scale, ceiling = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
recs = []
for coll, f in (("allreduce", 1.0), ("allgather", 0.5)):
    size = 8
    while size <= 4 << 20:
        for in_place in (False, True):
            t = 2.0 + size / (scale * 1000.0)
            algbw = size / t / 1000.0
            recs.append({"collective": coll, "size_bytes": size, "count": size // 4,
                         "dtype": "float", "op": "sum", "root": 0, "in_place": in_place,
                         "time_us": t, "algbw_gbps": algbw, "busbw_gbps": algbw * f,
                         "wrong": 0, "algorithm": ""})
        size *= 4
ctx = {"tool": "ccl-bench", "library": lib, "library_version": "0.1.0", "git_commit": "unknown",
       "date": "2026-01-01T00:00:00Z", "host": "h", "cpu": "Test CPU @ 1 GHz", "ncpus": 2,
       "nranks": 2, "nhosts": 1, "transports": "", "topology": "", "collective": "allreduce",
       "dtype": "float", "op": "sum", "root": 0, "iterations": 20, "warmup": 5, "label": lib,
       "ceiling_gbps": None if ceiling == "null" else float(ceiling)}
json.dump({"schema": "podccl-bench/1", "context": ctx, "records": recs}, open(path, "w"))
EOF
}
if ! mkjson "$tmp/a.json" podccl 8 12.5 || ! mkjson "$tmp/b.json" "Open MPI" 5 null; then
    echo "FAIL: could not write the test JSON files"
    exit 1
fi

# check_png FILE: exists, PNG magic bytes, more than 5 KB (axes, lines and labels drawn)
check_png() {
    if [ ! -f "$1" ]; then echo "FAIL: $1 not written"; fail=1; return; fi
    magic=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
    [ "$magic" = 89504e470d0a1a0a ] || { echo "FAIL: $1 is not a PNG (magic $magic)"; fail=1; }
    n=$(wc -c <"$1")
    [ "$n" -gt 5000 ] || { echo "FAIL: $1 is only $n bytes"; fail=1; }
}

"$py" "$src/bench/plot.py" -o "$tmp/all" "$tmp/a.json" "$tmp/b.json" >"$tmp/out" 2>"$tmp/err" ||
    { echo "FAIL: plot.py exited $?"; cat "$tmp/err"; fail=1; }
for f in busbw-allreduce lat-allreduce busbw-allgather lat-allgather; do
    check_png "$tmp/all-$f.png"
    grep -qxF "$tmp/all-$f.png" "$tmp/out" || { echo "FAIL: plot.py did not print $tmp/all-$f.png"; fail=1; }
done

# -c and --in-place: only allreduce
"$py" "$src/bench/plot.py" -c allreduce --in-place -o "$tmp/one" "$tmp/a.json" "$tmp/b.json" \
    >"$tmp/out" 2>"$tmp/err" || { echo "FAIL: plot.py -c allreduce --in-place exited $?"; cat "$tmp/err"; fail=1; }
check_png "$tmp/one-busbw-allreduce.png"
check_png "$tmp/one-lat-allreduce.png"
[ ! -e "$tmp/one-busbw-allgather.png" ] || { echo "FAIL: -c allreduce drew allgather"; fail=1; }
# default prefix: the first file without .json
(cd "$tmp" && "$py" "$src/bench/plot.py" a.json >/dev/null 2>&1)
[ -f "$tmp/a-busbw-allreduce.png" ] || { echo "FAIL: default prefix: no a-busbw-allreduce.png"; fail=1; }

# malformed inputs: not JSON, wrong schema, record missing a key, unknown collective
printf '{"schema": "podccl-bench/1", "context": {}, "records": [' >"$tmp/trunc.json"
printf '{"schema": "other", "context": {}, "records": []}' >"$tmp/schema.json"
printf '{"schema": "podccl-bench/1", "context": {}, "records": [{"collective": "allreduce"}]}' \
    >"$tmp/rec.json"
for bad in trunc schema rec; do
    if "$py" "$src/bench/plot.py" -o "$tmp/bad" "$tmp/a.json" "$tmp/$bad.json" >/dev/null 2>"$tmp/err"; then
        echo "FAIL: plot.py accepted the malformed $bad.json"; fail=1
    elif ! grep -q "$bad.json" "$tmp/err"; then
        echo "FAIL: plot.py did not name $bad.json in its error:"; cat "$tmp/err"; fail=1
    fi
done
if "$py" "$src/bench/plot.py" -c nosuch -o "$tmp/bad" "$tmp/a.json" >/dev/null 2>&1; then
    echo "FAIL: plot.py -c nosuch exited 0"; fail=1
fi
[ "$fail" = 0 ] && echo "PASS: plot.py"
exit $fail
