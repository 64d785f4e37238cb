#!/bin/sh
# check_man.sh: the man pages (docs/man/*.md -> man/*.1, *.3 by go-md2man) render, and they do
# not drift from the code: every flag `ccl-bench -h` lists is an entry of ccl-bench(1), and every
# function include/podccl.h declares is named in podccl(3). Exit 77 (skip, reason printed) when
# configure found no go-md2man (no man pages built).
set -u
b=${top_builddir:-.}
src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$b/man/ccl-bench.1" ] || { echo "check_man.sh: SKIP: man pages not built (configure found no go-md2man)"; exit 77; }
fail=0
for page in "$b/man/ccl-bench.1" "$b/man/podccl.3"; do
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l -P cat "$page" 2>&1) || { echo "$page: man failed: $out"; fail=1; continue; }
    for sec in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        echo "$out" | grep -q "^$sec" || { echo "$page: no $sec section"; fail=1; }
    done
    echo "$out" | grep -qi "warning" && { echo "$page: rendering warnings"; fail=1; }
done
# Flags: lines of the usage that start with "  -" name a flag first.
flags=$("$b/bench/ccl-bench" -h 2>&1 | sed -n 's/^  \(--*[a-z][a-z0-9-]*\).*/\1/p' | sort -u)
[ -n "$flags" ] || { echo "ccl-bench -h lists no flags"; fail=1; }
for f in $flags; do
    grep -q -- "\*\*$f\*\*" "$src/docs/man/ccl-bench.1.md" ||
        { echo "docs/man/ccl-bench.1.md lacks the flag $f (ccl-bench -h lists it)"; fail=1; }
done
fns=$(grep -E '^(PODCCL_API )?[a-z].*[ *]podccl[A-Za-z]+\(' "$src/include/podccl.h" |
      sed 's/^[^(]*[ *]\(podccl[A-Za-z]*\)(.*/\1/' | sort -u)
[ -n "$fns" ] || { echo "no functions found in include/podccl.h"; fail=1; }
for f in $fns; do
    grep -q "\*\*$f\*\*" "$src/docs/man/podccl.3.md" ||
        { echo "docs/man/podccl.3.md does not name $f (include/podccl.h declares it)"; fail=1; }
done
n=$(echo "$flags" | wc -w); m=$(echo "$fns" | wc -w)
[ $fail = 0 ] && echo "check_man.sh: both pages render; $n flags and $m functions documented: PASS" ||
    echo "check_man.sh: FAIL"
exit $fail
