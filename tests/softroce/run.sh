#!/bin/bash
# The soft-RoCE lane (make check-softroce; docs/softroce.md): the ib transport against real
# verbs and rdma_cm, in QEMU VMs running Debian's kernel with rdma_rxe.
#
#   run.sh BUILD_DIR
#
# 1. On this host (no VM): with no RDMA device, PODCCL_NET=ib must fail init promptly with a
#    message naming "no RDMA device" (not applicable on a host that has RDMA devices).
# 2. One VM, two rxe devices over a veth pair: test_coll --env --quick across two "hosts"
#    (PODCCL_HOSTID), with one and two ranks per host; ccl-bench with checks; automatic device
#    choice; a PODCCL_IB_HCA matching nothing; a peer killed mid-run; ofi's verbs;ofi_rxm if
#    that transport exists.
# 3. Two VMs over a virtual link: test_coll across the VMs (2 + 1 ranks) and ccl-bench.
# Exit: 0 all passed, 1 a check failed, 77 the lane cannot run here (reason printed).
# PODCCL_SOFTROCE_PARTS (default "host 1vm 2vm") selects parts.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: run.sh BUILD_DIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
HERE=$(cd "$(dirname "$0")" && pwd)
parts=" ${PODCCL_SOFTROCE_PARTS:-host 1vm 2vm} "
say() { echo "softroce: $*"; }
t_start=$SECONDS

grep -q '^#define HAVE_VERBS 1' "$B/config.h" 2> /dev/null ||
  { say "SKIP: this build has no ib transport (configure found no libibverbs/librdmacm)"; exit 77; }
for f in tests/test_coll bench/ccl-bench; do
  [ -x "$B/$f" ] || { say "FAIL: $B/$f is not built (make check-softroce builds it)"; exit 1; }
done
failed=0
# The lane's own point-to-point test, built against the build tree (shared library only).
rm -f "$B/tests/softroce-ib-p2p"
if [ -e "$B/.libs/libpodccl.so" ]; then
  # shellcheck disable=SC2086 # CFLAGS/LDFLAGS are word lists (make passes the build's own)
  ${CC:-cc} ${CFLAGS:-} -std=c11 -Wall -Wextra -Werror -I"$HERE/../../include" ${LDFLAGS:-} \
    -o "$B/tests/softroce-ib-p2p" "$HERE/ib_p2p.c" -L"$B/.libs" -lpodccl ||
    { say "FAIL: cannot build tests/softroce/ib_p2p.c"; exit 1; }
fi

# ---- 1. host: no RDMA device
if [[ $parts == *" host "* ]]; then
  t0=$SECONDS
  tmp=$(mktemp -d)
  port=$((30000 + RANDOM % 20000))
  pids=()
  for r in 0 1; do
    PODCCL_NET=ib PODCCL_RANK=$r PODCCL_NRANKS=2 PODCCL_COMM_ID=127.0.0.1:$port PODCCL_TIMEOUT=30 \
      PODCCL_HOSTID=$([ $r = 0 ] && echo a || echo b) timeout 60 "$B/tests/test_coll" --env --quick \
      > "$tmp/$r.log" 2>&1 &
    pids+=($!)
  done
  rcs=()
  for p in "${pids[@]}"; do wait "$p"; rcs+=($?); done
  if [ "${rcs[0]}" = 0 ] && [ "${rcs[1]}" = 0 ]; then
    say "host check not applicable: this host has a working RDMA device (the ranks ran over ib)"
  elif [ "${rcs[0]}" != 124 ] && [ "${rcs[1]}" != 124 ] && [ "${rcs[0]}" != 0 ] &&
    [ "${rcs[1]}" != 0 ] && grep -q "no RDMA device" "$tmp"/*.log; then
    say "PASS host: init refused in $((SECONDS - t0))s: $(grep -ho 'no RDMA device.*' "$tmp"/*.log | head -1)"
  else
    say "FAIL host: expected both ranks to fail init with 'no RDMA device' (exit codes ${rcs[*]})"
    tail -n 20 "$tmp"/*.log
    failed=1
  fi
  rm -rf "$tmp"
fi

# ---- 2./3. the VMs
skipped=""
vm_part() { # vm_part NVMS TIMEOUT
  local script rc t0=$SECONDS
  script=$(mktemp)
  printf '#!/bin/sh\nexport PODCCL_BUILD=%q\nexec sh %q\n' "$B" "$HERE/guest-tests.sh" > "$script"
  say "part $1vm: booting $1 VM(s) (TCG emulation: slow)"
  bash "$HERE/vm-run.sh" --vms "$1" --timeout "$2" -- "$script" "$B" "$HERE/guest-tests.sh" 2>&1 |
    grep --line-buffered -v -E '^(\[vm[0-9]\] )?(SeaBIOS|Booting from|iPXE|\s*$)'
  rc=${PIPESTATUS[0]}
  rm -f "$script"
  case $rc in
    0) say "PASS part $1vm ($((SECONDS - t0))s)" ;;
    77) skipped=1 ;;
    124) say "FAIL part $1vm: timed out after $2s"; failed=1 ;;
    *) say "FAIL part $1vm: exit $rc ($((SECONDS - t0))s)"; failed=1 ;;
  esac
  return $rc
}
if [[ $parts == *" 1vm "* ]]; then vm_part 1 900; fi
if [[ $parts == *" 2vm "* ]] && [ -z "$skipped" ]; then vm_part 2 600; fi

say "total $((SECONDS - t_start))s"
[ $failed = 0 ] || exit 1
if [ -n "$skipped" ]; then
  say "SKIP: the VM part cannot run on this host (reason above)"
  exit 77
fi
exit 0
