#!/bin/sh
# The docs read the code's tables: every algorithm of the registry (ccl-bench --algos) must be a
# row of docs/algorithms.md, and every parameter (ccl-bench --params) must appear in docs/env.md.
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
rm -f /tmp/check_docs.$$
for p in $("$ccl" --params | grep -o '^PODCCL_[A-Z_]*'); do
    grep -q "$p" "$src/docs/env.md" || { echo "docs/env.md lacks $p"; fail=1; }
done
[ $fail = 0 ] && echo "check_docs.sh: registry and parameters documented: PASS" || echo "check_docs.sh: FAIL"
exit $fail
