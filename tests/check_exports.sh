#!/bin/sh
# libpodccl.so exports exactly the public API: every function include/podccl.h declares with
# PODCCL_API, and nothing else (the library is built with -fvisibility=hidden). Each network
# module exports only its entry point (podcclNetPlugin_v1, include/podccl_net.h).
set -u
b=${top_builddir:-.}
src=$(cd "$(dirname "$0")/.." && pwd)
command -v nm >/dev/null || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
so=$b/.libs/libpodccl.so
[ -e "$so" ] || { echo "FAIL: $so is missing: build the library first"; exit 1; }
fail=0
tmp=${TMPDIR:-/tmp}/check_exports.$$
# What the header exports: "PODCCL_API <type> podcclName(" declarations.
sed -n 's/^PODCCL_API [^(]*[ *]\(podccl[A-Za-z0-9_]*\)(.*/\1/p' "$src/include/podccl.h" | sort -u \
    > "$tmp.api"
# What the library exports (functions and data defined in it; the linker's own markers aside).
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' |
    grep -vxE '_init|_fini|_edata|_end|__bss_start' | sort -u > "$tmp.so"
# A public function declared without the macro would be hidden, and missing from both lists.
bare=$(grep -nE '^(const char \*|void |int |podcclResult_t )podccl[A-Z][A-Za-z0-9_]*\(' "$src/include/podccl.h")
[ -z "$bare" ] || { echo "FAIL: include/podccl.h declares functions without PODCCL_API:"; echo "$bare" | sed 's/^/  /'; fail=1; }
extra=$(comm -13 "$tmp.api" "$tmp.so")
missing=$(comm -23 "$tmp.api" "$tmp.so")
[ -z "$extra" ] || { echo "FAIL: libpodccl.so exports symbols that are not PODCCL_API:"; echo "$extra" | sed 's/^/  /'; fail=1; }
[ -z "$missing" ] || { echo "FAIL: PODCCL_API functions that libpodccl.so does not export:"; echo "$missing" | sed 's/^/  /'; fail=1; }
n=$(wc -l < "$tmp.api")
[ "$n" -gt 0 ] || { echo "FAIL: no PODCCL_API declaration found in include/podccl.h"; fail=1; }
for m in "$b"/.libs/podccl-net-*.so; do
    [ -e "$m" ] || continue
    other=$(nm -D --defined-only "$m" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' |
        grep -vxE '_init|_fini|_edata|_end|__bss_start|podcclNetPlugin_v1')
    [ -z "$other" ] || { echo "FAIL: $(basename "$m") exports more than podcclNetPlugin_v1:"; echo "$other" | sed 's/^/  /'; fail=1; }
    nm -D --defined-only "$m" | grep -qw podcclNetPlugin_v1 ||
        { echo "FAIL: $(basename "$m") does not export podcclNetPlugin_v1"; fail=1; }
done
rm -f "$tmp.api" "$tmp.so"
[ $fail = 0 ] && echo "check_exports: libpodccl.so exports the $n PODCCL_API functions and nothing else"
exit $fail
