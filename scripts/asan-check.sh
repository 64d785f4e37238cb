#!/usr/bin/env bash
# The sanitizer lane (.ci/run runs it; `make check-asan` too): builds podccl with ASan, UBSan and
# LeakSanitizer in its own build directory and runs the tests that start real processes and
# cover every collective and the multi-process paths, plus the unit tests and the fuzz corpus.
# Any sanitizer report fails the lane, whichever process wrote it: every instrumented process
# writes its reports to a file of its own under $BUILD/sanitizer-logs (log_path), so that the
# report of a child whose stderr a test swallowed, or that a parent only saw as "exit 1", is not
# lost; the test logs are searched for reports too. docs/fuzzing.md says what runs and why.
#
# Environment: ASAN_BUILD_DIR (default _build_ci_asan), ASAN_TESTS (the tests, as make check's
# TESTS), ASAN_COLL_ARGS (arguments of run_coll.sh, default --quick), SKIP_BUILD=1 (reuse the
# build). Exit status: 0 clean, 1 a test failed or a report was found, 2 the build failed.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=${ASAN_BUILD_DIR:-_build_ci_asan}
# run_coll.sh: every collective, op and type on 1..8 ranks, each algorithm family, the staged
# and single-copy paths (--quick: 5 types and no large counts; the full matrix takes ~25 minutes
# under ASan). Failure paths: test_kill (ranks killed at chosen points), test_chaos (20 random
# kills at np 2..8), test_life (errors, abort, destroy), test_shrink, test_mismatch (mismatched
# calls on every path).
# test_bootstrap and test_security (rendezvous, authentication, hostile clients); test_split;
# run_trace.sh (flight recorder, signals). Single process: argument and parameter checks,
# kernels, topology file, the fuzz corpus. Left out (docs/fuzzing.md): run_hosts.sh,
# run_netns.sh, run_tiers.sh (network namespaces, minutes each under ASan), test_sched
# (symbolic, one process: 130 s under ASan) and run_mpi.sh (MPI launchers are not instrumented).
default_tests="tests/run_coll.sh tests/test_kill tests/test_chaos tests/test_life
  tests/test_shrink tests/test_mismatch tests/test_bootstrap tests/test_security tests/test_split
  tests/run_trace.sh
  tests/test_badarg tests/test_params tests/test_reduce tests/test_topo_file
  tests/fuzz/run_corpus.sh"
tests=${ASAN_TESTS:-$default_tests}
flags="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# -Wno-error: at -O1 and with the sanitizers' checks inlined, gcc's flow analysis warns where the
# -O2 build (which holds the code to -Werror) does not; this lane is about the sanitizers. The
# warnings are still printed below.
flags="$flags -Wno-error"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    [ -x configure ] || ./autogen.sh >/dev/null || exit 2
    mkdir -p "$build" || exit 2
    if [ ! -f "$build/Makefile" ]; then
        # --without-torch: the PyTorch backend is C++ in an uninstrumented interpreter; its tests
        # run in make check.
        (cd "$build" && "$src/configure" -q --without-torch CFLAGS="$flags") ||
            { echo "asan-check: configure failed"; exit 2; }
    fi
    t0=$SECONDS
    make -C "$build" -j"$(nproc)" all >"$build/asan-build.log" 2>&1 &&
        make -C "$build" -j"$(nproc)" check TESTS= >>"$build/asan-build.log" 2>&1 ||
        { tail -30 "$build/asan-build.log"; echo "asan-check: build failed"; exit 2; }
    grep -E 'warning:' "$build/asan-build.log" | sort -u | head -20
    echo "asan-check: built in $((SECONDS - t0)) s"
fi
build=$(cd "$build" && pwd)
# Only tests the build has (the cmocka ones need libcmocka-dev).
have=" $(make -s -C "$build" print-tests) "
run=""
for t in $tests; do
    case $have in
    *" $t "*) run="$run $t" ;;
    *) echo "asan-check: $t is not a test of this build; skipped" ;;
    esac
done

[ -n "$run" ] || { echo "asan-check: no test to run"; exit 1; }

logs=$build/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
# halt_on_error: the first report ends the process; abort_on_error: by SIGABRT, which the
# harness reports as a signal rather than an ordinary error exit. detect_leaks: leaks of a
# process that exits normally are reports too (killed ranks run no leak check). gcc's UBSan
# runtime, loaded beside ASan's, ignores log_path and reports on stderr: the test logs are
# searched below, and the SIGABRT fails the rank.
ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1"
ASAN_OPTIONS="$ASAN_OPTIONS:detect_stack_use_after_return=1:check_initialization_order=1"
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
export LSAN_OPTIONS="log_path=$logs/lsan"
# libfabric links libinfinipath (PSM), whose constructor replaces the SIGSEGV and SIGABRT
# handlers with one that writes a *.btr file and exits 1: ASan's report of a SEGV would be lost.
export IPATH_NO_BACKTRACE=${IPATH_NO_BACKTRACE:-1} HFI_NO_BACKTRACE=${HFI_NO_BACKTRACE:-1}

# One test at a time, so that each gets its own time and verdict. run_coll.sh is run directly,
# with its arguments; the others through make check (its environment, its .log files).
npass=0
failed=""
test_logs=""
for t in $run; do
    t1=$SECONDS
    log=$build/${t%.sh}.log
    rm -f "$log" "$build/${t%.sh}.trs"
    if [ "$t" = tests/run_coll.sh ]; then
        # shellcheck disable=SC2086 # the arguments are a word list
        (cd "$build" && PODCCL_TIMEOUT=30 top_builddir=. sh "$src/tests/run_coll.sh" \
            ${ASAN_COLL_ARGS---quick}) >"$log" 2>&1
    else
        make -C "$build" check TESTS="$t" >"$build/asan-make.out" 2>&1
    fi
    trc=$?
    test_logs="$test_logs $log"
    if [ "$trc" -eq 0 ]; then
        npass=$((npass + 1))
        echo "PASS: $t ($((SECONDS - t1)) s)"
    else
        failed="$failed $t"
        echo "FAIL: $t ($((SECONDS - t1)) s, exit $trc; log $log)"
        tail -20 "$log"
    fi
done

# A file that only lists the suppressions a test declared (test_mismatch suppresses a libfabric
# leak) is no report.
reports=$(find "$logs" -type f -exec grep -lE 'ERROR: |runtime error:|SUMMARY: ' {} + | sort)
# shellcheck disable=SC2086 # test_logs is a word list
in_logs=$(grep -lE 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' $test_logs \
    2>/dev/null)
nrep=$(echo "$reports" | grep -c . || true)
for f in $reports; do
    echo "==== sanitizer report $f"
    head -40 "$f"
done
for f in $in_logs; do
    echo "==== sanitizer report in test log $f"
    grep -E -A20 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' "$f" | head -40
done
if [ -n "$failed" ] || [ "$nrep" -gt 0 ] || [ -n "$in_logs" ]; then
    echo "asan-check: FAILED: $npass passed, failed:${failed:- none}; $nrep sanitizer report" \
        "file(s), $(echo "$in_logs" | grep -c .) test log(s) with a report"
    exit 1
fi
echo "asan-check: PASS: $npass tests, no sanitizer report"
exit 0
