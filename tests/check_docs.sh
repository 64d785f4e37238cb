#!/bin/sh
# The docs read the code's tables: every algorithm of the registry (ccl-bench --algos) must be a
# row of docs/algorithms.md, and docs/env.md must be exactly what tests/gen_env_md prints from the
# parameter table of src/param.c.
set -u
b=${top_builddir:-.}
src=$(cd "$(dirname "$0")/.." && pwd)
ccl=$b/bench/ccl-bench
fail=0
"$ccl" --algos | tail -n +3 > /tmp/check_docs.$$ || fail=1
while IFS= read -r line; do
    grep -qxF "$line" "$src/docs/algorithms.md" || { echo "docs/algorithms.md lacks: $line"; fail=1; }
done < /tmp/check_docs.$$
n=$(wc -l < /tmp/check_docs.$$)
m=$(sed -n '/<!-- registry/,/<!-- end registry/p' "$src/docs/algorithms.md" | grep -c '^| [a-z]* | `')
[ "$n" = "$m" ] || { echo "docs/algorithms.md has $m registry rows, the registry $n"; fail=1; }
# include/podccl.h lists the algorithms per collective between <algorithms> and </algorithms>,
# in the registry's order: "allreduce: direct cma ring ...".
awk -F'|' 'NF >= 4 { c = $2; a = $3; gsub(/[ `]/, "", c); gsub(/[ `]/, "", a)
                     if (!(c in l)) { o[n++] = c; l[c] = c ":" } l[c] = l[c] " " a }
           END { for (i = 0; i < n; i++) print l[o[i]] }' /tmp/check_docs.$$ > /tmp/check_docs_reg.$$
sed -n '/<algorithms>/,/<\/algorithms>/p' "$src/include/podccl.h" | sed '1d;$d' |
    sed 's/^ \* *//; s/  */ /g' > /tmp/check_docs_hdr.$$
if ! diff -u /tmp/check_docs_reg.$$ /tmp/check_docs_hdr.$$; then
    echo "include/podccl.h's <algorithms> list differs from the registry (diff above: - registry, + header)"
    fail=1
fi
rm -f /tmp/check_docs.$$ /tmp/check_docs_reg.$$ /tmp/check_docs_hdr.$$
# Parameters: docs/env.md is generated from the table in src/param.c (tests/gen_env_md, `make
# env-md`), so the committed file must be exactly what the generator prints now.
gen=$b/tests/gen_env_md
if [ ! -x "$gen" ]; then
    echo "$gen is missing: build it (make tests/gen_env_md) before running $0"; fail=1
elif ! "$gen" > /tmp/check_docs_env.$$; then
    echo "$gen failed (see its message above)"; fail=1
elif ! diff -u "$src/docs/env.md" /tmp/check_docs_env.$$ > /tmp/check_docs_diff.$$; then
    sed 's/^+++ .*/+++ generated from src\/param.c/' /tmp/check_docs_diff.$$
    echo "docs/env.md differs from the table in src/param.c (diff above: - committed, + generated)."
    echo "Edit the table in src/param.c, not docs/env.md, then regenerate: make env-md"
    echo "(in the build directory; or: $gen > $src/docs/env.md)"
    fail=1
fi
rm -f /tmp/check_docs_env.$$ /tmp/check_docs_diff.$$
# ccl-bench --params (which other tests and the param fuzzer parse) prints the same table: each
# parameter line is "NAME = value (default DEF; ALLOWED)", one per row of docs/env.md.
"$ccl" --params > /tmp/check_docs.$$ || fail=1
n=$(grep -c '^PODCCL_' /tmp/check_docs.$$)
p=$(grep -c '^PODCCL_[A-Z0-9_]* *= .*(default [^;]*; .*)$' /tmp/check_docs.$$)
m=$(grep -c '^| `PODCCL_' "$src/docs/env.md")
[ "$n" -gt 0 ] && [ "$n" = "$p" ] ||
    { echo "ccl-bench --params: $n parameters, $p with (default ...; allowed)"; fail=1; }
[ "$n" = "$m" ] || { echo "docs/env.md has $m parameter rows, ccl-bench --params $n"; fail=1; }
rm -f /tmp/check_docs.$$
[ $fail = 0 ] && echo "check_docs.sh: registry and parameters documented: PASS" || echo "check_docs.sh: FAIL"
exit $fail
