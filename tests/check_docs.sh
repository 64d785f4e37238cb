#!/bin/sh
# The docs read the code's tables: every algorithm of the registry (ccl-bench --algos) must be a
# row of docs/algorithms.md, and every parameter (ccl-bench --params) must be a row of docs/env.md
# with the same default and allowed values.
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
# Parameters: each line "NAME = value (default DEF; ALLOWED)" of ccl-bench --params must be a row
# "| `NAME` | `DEF` (or unset) | ALLOWED | ..." of docs/env.md, and env.md has no other rows.
tab=$(printf '\t')
"$ccl" --params > /tmp/check_docs.$$ || fail=1
sed -n "s/^\(PODCCL_[A-Z0-9_]*\) .*(default \([^;]*\); \(.*\))\$/\1$tab\2$tab\3/p" /tmp/check_docs.$$ \
    > /tmp/check_docs_p.$$
n=$(grep -c '^PODCCL_' /tmp/check_docs.$$)
[ "$n" -gt 0 ] && [ "$n" = "$(wc -l < /tmp/check_docs_p.$$)" ] ||
    { echo "ccl-bench --params: $n parameters, not all with (default ...; allowed)"; fail=1; }
while IFS="$tab" read -r name def allowed; do
    [ "$def" = unset ] && d=unset || d="\`$def\`"
    grep -qF "| \`$name\` | $d | $allowed |" "$src/docs/env.md" ||
        { echo "docs/env.md lacks the row: | \`$name\` | $d | $allowed | ..."; fail=1; }
done < /tmp/check_docs_p.$$
m=$(grep -c '^| `PODCCL_' "$src/docs/env.md")
[ "$n" = "$m" ] || { echo "docs/env.md has $m parameter rows, ccl-bench --params $n"; fail=1; }
rm -f /tmp/check_docs.$$ /tmp/check_docs_p.$$
[ $fail = 0 ] && echo "check_docs.sh: registry and parameters documented: PASS" || echo "check_docs.sh: FAIL"
exit $fail
