#!/usr/bin/env bash
# Builds the fuzz targets (tests/fuzz/fuzz_*.c) under libFuzzer with ASan and UBSan and runs
# them; docs/fuzzing.md has the details and the last results. `make fuzz` and `make fuzz-merge`
# call it from the build directory.
#   tests/fuzz/fuzz.sh build    the library with clang (its own configure, in fuzz/lib) and one
#                               binary per target, fuzz/fuzz_<target>
#   tests/fuzz/fuzz.sh run      build, then run each target FUZZ_RUNS times (default 1000000),
#                               one after the other, from the kept corpus; new inputs go to
#                               fuzz/corpus/<target>, a crash, leak or timeout to
#                               fuzz/artifact-<target>-*. Prints one summary line per target;
#                               exits 1 if any target failed.
#   tests/fuzz/fuzz.sh merge    adds to tests/fuzz/corpus/<target> the inputs of
#                               fuzz/corpus/<target> that reach new edges (-merge=1)
# Environment: FUZZ_CC (clang), FUZZ_RUNS, FUZZ_TARGETS (e.g. "topo_file param"; default every
# tests/fuzz/fuzz_*.c), FUZZ_ARGS (more libFuzzer flags), FUZZ_BUILDDIR (default: .).
set -uo pipefail
mode=${1:-run}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${FUZZ_BUILDDIR:-.}" && pwd)
work=$build/fuzz
cc=${FUZZ_CC:-clang}
runs=${FUZZ_RUNS:-1000000}
san="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
targets=${FUZZ_TARGETS:-$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}

# libfabric loads libinfinipath (PSM), whose constructor turns SIGSEGV/SIGABRT into exit 1 and a
# *.btr file in the working directory unless this is set (docs/fuzzing.md).
export IPATH_NO_BACKTRACE=${IPATH_NO_BACKTRACE:-1} HFI_NO_BACKTRACE=${HFI_NO_BACKTRACE:-1}

die() { echo "fuzz.sh: $*" >&2; exit 2; }

build_lib() {
    command -v "$cc" >/dev/null || die "$cc not found (FUZZ_CC); libFuzzer needs clang"
    mkdir -p "$work/lib" || die "cannot create $work/lib"
    if [ ! -f "$work/lib/Makefile" ]; then
        echo "== configuring the library for $cc in $work/lib"
        # -Wno-error: a warning only clang gives must not stop the fuzzing of the rest.
        (cd "$work/lib" && "$src/configure" -q CC="$cc" --disable-shared \
            CFLAGS="$san -fsanitize=fuzzer-no-link -Wno-error") >"$work/configure.log" 2>&1 ||
            { cat "$work/configure.log"; die "configure failed"; }
    fi
    echo "== building libpodccl.a with $cc"
    make -C "$work/lib" -j"$(nproc)" libpodccl.la >"$work/make.log" 2>&1 ||
        { tail -30 "$work/make.log"; die "library build failed (log: $work/make.log)"; }
    grep -E 'warning:' "$work/make.log" | sort -u | head -20
    return 0
}

build_targets() {
    local libs
    libs=$(sed -n "s/^dependency_libs='\(.*\)'/\1/p" "$work/lib/libpodccl.la")
    for t in $targets; do
        [ -f "$src/tests/fuzz/fuzz_$t.c" ] || die "no target $t (tests/fuzz/fuzz_$t.c)"
        # shellcheck disable=SC2086 # word splitting of the flag lists is intended
        "$cc" $san -fsanitize=fuzzer -std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra \
            -I"$src/include" -I"$src" -I"$src/src" -I"$work/lib" \
            "$src/tests/fuzz/fuzz_$t.c" "$work/lib/.libs/libpodccl.a" $libs -lm \
            -o "$work/fuzz_$t" || die "cannot build fuzz_$t"
    done
}

# One line per target from libFuzzer's log: executions, seconds, crashes, corpus, coverage.
summary() {
    local t=$1 rc=$2 log=$work/$1.log execs secs cov crashes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    crashes=$(find "$work" -maxdepth 1 -name "artifact-$t-*" | wc -l)
    [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
    printf 'fuzz_%-10s %9s executions in %5ss, %d crashes, corpus %s inputs, %s (exit %d)\n' \
        "$t" "${execs:-?}" "${secs:-?}" "$crashes" \
        "$(find "$work/corpus/$t" "$src/tests/fuzz/corpus/$t" -type f | wc -l)" "${cov:-cov: ?}" \
        "$rc"
    return $((crashes > 0))
}

run_targets() {
    local fail=0 rc
    for t in $targets; do
        mkdir -p "$work/corpus/$t" "$src/tests/fuzz/corpus/$t"
        rm -f "$work"/artifact-"$t"-*
        echo "== fuzz_$t: $runs runs (log: $work/$t.log)"
        local dict=""
        [ -f "$src/tests/fuzz/$t.dict" ] && dict="-dict=$src/tests/fuzz/$t.dict"
        # shellcheck disable=SC2086 # FUZZ_ARGS and dict are lists of flags
        (cd "$work" && "./fuzz_$t" -runs="$runs" -max_len=8192 -timeout=20 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$work/artifact-$t-" $dict ${FUZZ_ARGS:-} \
            "$work/corpus/$t" "$src/tests/fuzz/corpus/$t") >"$work/$t.log" 2>&1
        rc=$?
        summary "$t" "$rc" | tee -a "$work/summary.txt" || {
            fail=1
            grep -A30 -E '^==[0-9]+==ERROR|runtime error|fuzz_[a-z_]*: ' "$work/$t.log" | head -60
        }
    done
    return $fail
}

merge_targets() {
    for t in $targets; do
        [ -d "$work/corpus/$t" ] || continue
        local before after
        before=$(find "$src/tests/fuzz/corpus/$t" -type f | wc -l)
        # -use_counters=0: keep what reaches a new edge, not a new hit count of one (which keeps
        # the kept corpus at tens of inputs per target rather than a thousand)
        "$work/fuzz_$t" -merge=1 -use_counters=0 -max_len=8192 "$src/tests/fuzz/corpus/$t" \
            "$work/corpus/$t" >"$work/$t.merge.log" 2>&1 ||
            die "merge of $t failed (log: $work/$t.merge.log)"
        after=$(find "$src/tests/fuzz/corpus/$t" -type f | wc -l)
        echo "fuzz_$t: corpus $before -> $after inputs"
    done
}

case $mode in
build) build_lib && build_targets ;;
run)
    build_lib && build_targets || exit 2
    : >"$work/summary.txt"
    run_targets
    ;;
merge) build_lib && build_targets && merge_targets ;;
*) die "usage: $0 build|run|merge" ;;
esac
