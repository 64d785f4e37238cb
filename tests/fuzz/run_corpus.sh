#!/bin/sh
# make check: replays every file of tests/fuzz/corpus/<target>/ through tests/fuzz/fuzz_<target>,
# the fuzz target built with the ordinary compiler and tests/fuzz/driver.c instead of libFuzzer
# (docs/fuzzing.md). A parser that crashes, or breaks one of the promises its target checks,
# fails the test; so does a corpus directory without its target, or a target without inputs.
set -u
b=${top_builddir:-.}
src=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
n=0
for dir in "$src"/tests/fuzz/corpus/*/; do
    t=$(basename "$dir")
    bin=$b/tests/fuzz/fuzz_$t
    n=$((n + 1))
    if [ ! -x "$bin" ]; then
        echo "run_corpus.sh: $bin is not built (corpus $dir)"
        fail=1
    elif ! "$bin" "$dir"; then
        echo "run_corpus.sh: fuzz_$t FAILED on its corpus $dir"
        fail=1
    fi
done
[ "$n" -gt 0 ] || { echo "run_corpus.sh: no corpus under $src/tests/fuzz/corpus"; fail=1; }
[ $fail = 0 ] && echo "run_corpus.sh: $n corpora replayed: PASS" || echo "run_corpus.sh: FAIL"
exit $fail
