#!/bin/sh
# ccl-bench --json/--csv (and mpi-bench's, when built): the JSON validates against
# bench/schema/podccl-bench.schema.json, has two records per table row, the CSV has one line per
# record with the same busbw values, and a broken document is rejected by the same validation.
# Exits 77 (automake's SKIP) with a reason when python3's jsonschema or the binaries are missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${srcdir:-$here/..}
build=${top_builddir:-$here/..}
schema=$src/bench/schema/podccl-bench.schema.json
py=${PYTHON3:-/usr/bin/python3}
bench=$build/bench/ccl-bench
if ! [ -x "$py" ] || ! "$py" -c 'import jsonschema' 2>/dev/null; then
    echo "check_bench_json.sh: SKIP: python3 module jsonschema missing (apt-get install python3-jsonschema)"
    exit 77
fi
if ! [ -x "$bench" ]; then
    echo "check_bench_json.sh: SKIP: $bench not built"
    exit 77
fi
[ -r "$schema" ] || { echo "check_bench_json.sh: FAILED: no schema at $schema"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_json.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# check TABLE JSON CSV: the whole comparison; prints what it found, exits non-zero on a failure.
check() {
    "$py" - "$schema" "$1" "$2" "$3" <<'PY'
import copy, csv, json, sys
import jsonschema
schema_path, table_path, json_path, csv_path = sys.argv[1:5]
schema = json.load(open(schema_path))
V = jsonschema.Draft202012Validator
V.check_schema(schema)
val = V(schema)
fails = []
def ok(cond, what):
    if not cond:
        fails.append(what)
doc = json.load(open(json_path))
errs = [e.message for e in val.iter_errors(doc)]
ok(not errs, "schema: " + "; ".join(errs[:3]))
# Table rows: the lines of stdout that are not comments; columns as nccl-tests prints them.
rows = [l.split() for l in open(table_path) if l.strip() and not l.startswith("#")]
recs = doc.get("records", [])
ok(len(rows) > 0, "no table rows")
ok(len(recs) == 2 * len(rows), "%d records for %d table rows" % (len(recs), len(rows)))
for i, r in enumerate(rows):
    for k, placed in ((0, False), (1, True)):
        if 2 * i + k >= len(recs):
            break
        rec = recs[2 * i + k]
        busbw = float(r[7 + 4 * k])
        ok(rec.get("size_bytes") == int(r[0]) and rec.get("in_place") == placed,
           "record %d is not row %d (%s)" % (2 * i + k, i, placed))
        got = rec.get("busbw_gbps", float("nan"))
        ok(abs(got - busbw) <= 0.0051, "record %d busbw %g, table %g" % (2 * i + k, got, busbw))
lines = list(csv.DictReader(open(csv_path, newline="")))
ok(len(lines) == len(recs), "%d CSV lines for %d records" % (len(lines), len(recs)))
ok([float(l["busbw_gbps"]) for l in lines] == [r.get("busbw_gbps") for r in recs],
   "CSV busbw differs from the JSON's")
ctx = doc.get("context", {})
for l in lines[:1]:
    for k in ("tool", "library", "library_version", "git_commit", "date", "host", "label"):
        ok(l[k] == ctx.get(k), "CSV %s %r, JSON %r" % (k, l[k], ctx.get(k)))
    ok(int(l["nranks"]) == ctx.get("nranks"), "CSV nranks differs")
# The validation must be able to fail: each broken copy is rejected.
def broken():
    if recs:
        d = copy.deepcopy(doc); d["records"][0].pop("busbw_gbps", None)
        yield "record without busbw", d
        d = copy.deepcopy(doc); d["records"][0]["extra"] = 1; yield "record with an unknown key", d
        d = copy.deepcopy(doc); d["records"][0]["size_bytes"] = "8"; yield "size as a string", d
    d = copy.deepcopy(doc); d["context"]["nranks"] = 2.5; yield "fractional nranks", d
    d = copy.deepcopy(doc); d["context"].pop("git_commit", None); yield "context without git_commit", d
    d = copy.deepcopy(doc); d["schema"] = "podccl-bench/0"; yield "other schema", d
for what, d in broken():
    ok(not val.is_valid(d), "broken document accepted: " + what)
print("%s: %d rows, %d records, %d CSV lines, label %r, commit %s" % (
    json_path, len(rows), len(recs), len(lines), ctx.get("label"), ctx.get("git_commit")))
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY
}

failed=""
args="allreduce -b 8 -e 64K -f 8 -n 3 -w 1"
echo "+ $bench $args -np 2 --json $tmp/ccl.json --csv $tmp/ccl.csv --label 'a \"label\", quoted'"
# shellcheck disable=SC2086
if timeout 300 "$bench" $args -np 2 --json "$tmp/ccl.json" --csv "$tmp/ccl.csv" \
    --label 'a "label", quoted' >"$tmp/ccl.out"; then
    check "$tmp/ccl.out" "$tmp/ccl.json" "$tmp/ccl.csv" || failed="$failed ccl-bench"
else
    cat "$tmp/ccl.out"
    failed="$failed ccl-bench(exit)"
fi
# A file that cannot be written: every rank stops with exit 2 before the sweep.
# shellcheck disable=SC2086
timeout 60 "$bench" $args -np 2 --json "$tmp/no/such/dir.json" >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] || failed="$failed bad-path(exit $rc)"

# mpi-bench, when configure found MPI: run as tests/run_mpi.sh runs its MPI jobs.
mpirun=${MPIRUN:-mpirun}
if [ -x "$build/bench/mpi-bench" ] && [ "$mpirun" != no ] && command -v "$mpirun" >/dev/null 2>&1; then
    flags=""
    if "$mpirun" --version 2>&1 | grep -q "Open MPI"; then
        flags="--oversubscribe"
        [ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
    fi
    echo "+ $mpirun $flags -np 2 mpi-bench $args --json $tmp/mpi.json --csv $tmp/mpi.csv"
    # shellcheck disable=SC2086
    if timeout 300 "$mpirun" $flags -np 2 "$build/bench/mpi-bench" $args \
        --json "$tmp/mpi.json" --csv "$tmp/mpi.csv" >"$tmp/mpi.out"; then
        check "$tmp/mpi.out" "$tmp/mpi.json" "$tmp/mpi.csv" || failed="$failed mpi-bench"
    else
        cat "$tmp/mpi.out"
        failed="$failed mpi-bench(exit)"
    fi
else
    echo "check_bench_json.sh: mpi-bench not built or no mpirun: its files are not checked"
fi

if [ -n "$failed" ]; then
    echo "check_bench_json.sh: FAILED:$failed"
    exit 1
fi
echo "check_bench_json.sh: all checks passed"
