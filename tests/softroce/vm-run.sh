#!/bin/bash
# Runs a test script against real soft-RoCE (the rdma_rxe kernel module) inside one or two QEMU
# VMs that boot Debian's stock kernel, so that verbs code can be tested on hosts whose own kernel
# has no RDMA support. Modeled on the softroce-run recipe of our shared tools (shared/tools/
# softroce): the same approach (download, never install, the kernel and busybox; a busybox
# initramfs carrying the host's own rdma-core libraries; TCG; a veth pair with policy routing in
# one VM, or two VMs on a QEMU UDP socket link), carried here so CI needs nothing outside the repo.
#
#   vm-run.sh [--vms 1|2] [--timeout S] -- SCRIPT [FILE...]
#
# SCRIPT runs as root in each VM as /run-test.sh (with two VMs on both; it branches on
# $SOFTROCE_NODE). Each FILE (file or directory) is copied to the same absolute path in the
# guest with the shared libraries ldd reports for it. Exit code: the script's (the first non-zero
# one with two VMs), 124 on timeout, 125 when a VM ended without reporting, 77 when the lane
# cannot run here (no root for apt-get, no Debian mirror, a failed download); the reason is
# printed. Environment: PODCCL_SOFTROCE_CACHE (/var/cache/podccl-softroce), PODCCL_SOFTROCE_MEM
# (MiB per VM, 2048), PODCCL_SOFTROCE_SMP (vCPUs, 2), PODCCL_SOFTROCE_KEEP=1 (keep the work dir).
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "vm-run: $*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

VMS=1 TIMEOUT=600
while [ $# -gt 0 ]; do
  case $1 in
    --vms) VMS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --) shift; break ;;
    *) log "usage: vm-run.sh [--vms 1|2] [--timeout S] -- SCRIPT [FILE...]"; exit 2 ;;
  esac
done
[ $# -ge 1 ] && [ -f "$1" ] || { log "no SCRIPT given"; exit 2; }
[[ $VMS =~ ^[12]$ && $TIMEOUT =~ ^[0-9]+$ ]] || { log "bad --vms or --timeout"; exit 2; }
SCRIPT=$1; shift
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PODCCL_SOFTROCE_CACHE:-/var/cache/podccl-softroce}

# ---- 1. prerequisites: packages from the distribution; kernel and busybox only downloaded.
[ -r /etc/debian_version ] && command -v apt-get > /dev/null && command -v dpkg-deb > /dev/null ||
  skip "needs a Debian host (apt-get, dpkg-deb) to fetch the guest kernel"
mkdir -p "$CACHE" 2> /dev/null && [ -w "$CACHE" ] || skip "cache directory $CACHE is not writable (run as root or set PODCCL_SOFTROCE_CACHE)"
exec 9> "$CACHE/.lock" && flock 9 # concurrent runs share one download
export DEBIAN_FRONTEND=noninteractive
apt_log=$CACHE/apt.log
apt_do() { "$@" -q -o APT::Sandbox::User=root >> "$apt_log" 2>&1; }
apt_retry() { apt_do "$@" || { apt_do apt-get update && apt_do "$@"; }; } # stale lists: refresh once
missing=()
for p in qemu-system-x86 ibverbs-providers ibverbs-utils rdmacm-utils iproute2; do
  dpkg-query -W -f '${Status}' "$p" 2> /dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || skip "packages ${missing[*]} are missing and installing them needs root"
  log "installing ${missing[*]}"
  apt_retry apt-get install -y --no-install-recommends "${missing[@]}" ||
    skip "apt-get install ${missing[*]} failed (no access to a Debian mirror?); see $apt_log: $(tail -1 "$apt_log")"
fi
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 not found after installing qemu-system-x86"
kernel_pkg() { apt-cache depends linux-image-amd64 2> /dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'; }
KPKG=$(kernel_pkg)
[ -n "$KPKG" ] || { apt_do apt-get update; KPKG=$(kernel_pkg); }
[ -n "$KPKG" ] || KPKG=$(cd "$CACHE" && ls -d linux-image-* 2> /dev/null | sort -V | tail -1) # offline: newest cached
[ -n "$KPKG" ] || skip "cannot find which kernel linux-image-amd64 depends on (apt-cache depends linux-image-amd64 failed; no package lists?)"
fetch() { # download and unpack package $1 into $CACHE/$1, once
  [ -e "$CACHE/$1/.ok" ] && return 0
  log "downloading $1"
  rm -rf "${CACHE:?}/$1" "$CACHE/$1"_*.deb
  (cd "$CACHE" && apt_retry apt-get download "$1") || return 1
  dpkg-deb -x "$CACHE/$1"_*.deb "$CACHE/$1" && rm -f "$CACHE/$1"_*.deb && touch "$CACHE/$1/.ok"
}
fetch "$KPKG" || skip "apt-get download $KPKG failed; see $apt_log: $(tail -1 "$apt_log")"
fetch busybox-static || skip "apt-get download busybox-static failed; see $apt_log: $(tail -1 "$apt_log")"
KV=${KPKG#linux-image-}
KDIR=$CACHE/$KPKG
BB=$CACHE/busybox-static/bin/busybox
MODDIR=
for d in "$KDIR"/usr/lib/modules/"$KV" "$KDIR"/lib/modules/"$KV"; do [ -d "$d" ] && MODDIR=$d && break; done
[ -n "$MODDIR" ] && [ -x "$BB" ] && [ -f "$KDIR/boot/vmlinuz-$KV" ] || skip "unpacked $KPKG or busybox-static looks incomplete in $CACHE"
# The package's postinst (depmod) never ran: make modules.dep with busybox's depmod.
[ -e "$MODDIR/modules.dep" ] || "$BB" depmod -b "$KDIR" "$KV" || skip "depmod of $KV failed"
flock -u 9

# ---- 2. the initramfs
WORK=$(mktemp -d "${TMPDIR:-/tmp}/podccl-softroce.XXXXXX")
stop_vms() { # only the QEMU processes this run started, by their pidfiles
  local f pid
  for f in "$WORK"/vm*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2> /dev/null) || continue
    grep -q qemu-system "/proc/$pid/comm" 2> /dev/null && kill "$pid" 2> /dev/null
  done
  return 0
}
cleanup() {
  stop_vms
  if [ "${PODCCL_SOFTROCE_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
R=$WORK/root
mkdir -p "$R"/usr/{bin,sbin,lib/modules,lib64,local/bin} "$R"/{dev,proc,sys,tmp,run,etc,root}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done # usr-merged, like the host
put() { # host files to the same paths in the guest
  local f
  for f; do [ -e "$R$f" ] || { mkdir -p "$R$(dirname "$f")" && cp -L "$f" "$R$f"; }; done
}
libs_of() { ldd "$@" 2> /dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u; }
put_elf() { put "$@"; local l; mapfile -t l < <(libs_of "$@"); [ ${#l[@]} -eq 0 ] || put "${l[@]}"; }

# Kernel modules, each after its dependencies (modules.dep), so the guest needs only insmod.
declare -A seen
order=()
add_mod() {
  [ -n "${seen[$1]:-}" ] && return
  seen[$1]=1
  local d
  for d in $(grep "^$1:" "$MODDIR/modules.dep" | cut -d: -f2); do add_mod "$d"; done
  order+=("$1")
}
# rxe needs the crc32 shash, which no module declares, hence crc32_generic.
for m in crc32_generic veth virtio_pci virtio_net rdma_rxe ib_uverbs rdma_ucm; do
  p=$(grep -oE "^[^:]*/$m\.ko(\.xz|\.zst|\.gz)?:" "$MODDIR/modules.dep" | tr -d :)
  if [ -n "$p" ]; then add_mod "$p"
  elif ! grep -q "/$m.ko" "$MODDIR/modules.builtin"; then skip "kernel $KV has no module $m"; fi
done
for p in "${order[@]}"; do
  b=$(basename "$p"); b=${b%.xz}; b=${b%.zst}; b=${b%.gz}
  case $p in *.xz) xz -dc ;; *.zst) zstd -dc ;; *.gz) gzip -dc ;; *) cat ;; esac < "$MODDIR/$p" > "$R/lib/modules/$b"
  echo "$b" >> "$R/etc/modules-order"
done

# User space from the host: shells, iproute2, rdma-core tools, the rxe provider (dlopened, so
# ldd cannot see it), libgcc_s (dlopened by glibc), libfabric and its providers when present.
for t in dash bash ip rdma ibv_devices ibv_devinfo ibv_rc_pingpong rping fi_info; do
  p=$(command -v "$t") && put_elf "$p"
done
for p in /usr/lib/*/libibverbs/librxe-rdmav*.so; do [ -e "$p" ] && put_elf "$p"; done
for p in /etc/libibverbs.d/rxe.driver /usr/lib/*/libgcc_s.so.1; do [ -e "$p" ] && put "$p"; done
for p in /usr/lib/*/libfabric.so.1 /usr/lib/*/libfabric/*.so; do [ -e "$p" ] && put_elf "$p"; done

for f in "$@"; do # the caller's files, at their own absolute paths
  p=$(readlink -f "$f")
  if [ -d "$p" ]; then
    mkdir -p "$R$p" && cp -a "$p/." "$R$p/"
    mapfile -d '' -t elfs < <(find "$p" -type f \( -perm -u+x -o -name '*.so' -o -name '*.so.*' \) -print0)
    mapfile -t l < <([ ${#elfs[@]} -eq 0 ] || libs_of "${elfs[@]}")
    [ ${#l[@]} -eq 0 ] || put "${l[@]}"
  elif [ -f "$p" ]; then
    put_elf "$p"
  else
    log "no such FILE: $f"; exit 2
  fi
done
cp "$SCRIPT" "$R/run-test.sh" && chmod +x "$R/run-test.sh"
cp "$HERE/guest-init.sh" "$R/init" && chmod +x "$R/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
# /bin/sh is dash: busybox's own shell would prefer its applets (a veth-less ip) over PATH.
ln -s dash "$R/usr/bin/sh"
cp "$BB" "$R/usr/bin/busybox"
for a in $("$BB" --list); do [ -e "$R/usr/bin/$a" ] || [ -e "$R/usr/sbin/$a" ] || ln -s busybox "$R/usr/bin/$a"; done
# Uncompressed: the emulated CPU would unpack it slowly.
(cd "$R" && find . | "$BB" cpio -o -H newc 2> /dev/null) > "$WORK/initrd" || { log "cpio failed"; exit 1; }

# ---- 3. boot. KVM guests hang on our hosts: emulate the CPU (TCG).
qemu=(qemu-system-x86_64 -accel "tcg,thread=multi" -cpu max -smp "${PODCCL_SOFTROCE_SMP:-2}"
  -m "${PODCCL_SOFTROCE_MEM:-2048}" -nographic -no-reboot -nic none
  -kernel "$KDIR/boot/vmlinuz-$KV" -initrd "$WORK/initrd")
port=$((20000 + RANDOM % 20000)) # the two VMs' UDP link
log "kernel $KV, initramfs $(du -m "$WORK/initrd" | cut -f1) MiB, $VMS VM(s), timeout ${TIMEOUT}s"
start=$SECONDS
for ((i = 0; i < VMS; i++)); do
  net=()
  [ "$VMS" = 1 ] || net=(-netdev "socket,id=n0,udp=127.0.0.1:$((port + 1 - i)),localaddr=127.0.0.1:$((port + i))"
    -device "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:0$i,romfile=")
  tag=""
  [ "$VMS" = 1 ] || tag="[vm$i] "
  { "${qemu[@]}" "${net[@]}" -pidfile "$WORK/vm$i.pid" \
      -append "console=ttyS0 quiet panic=1 SOFTROCE_VMS=$VMS SOFTROCE_NODE=$i" < /dev/null 2>&1; } |
    sed -u -e 's/\r//g; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' -e "s/^/$tag/" | tee "$WORK/vm$i.log" &
done
timed_out=0
while jobs -r | grep -q .; do
  if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
    log "timeout after ${TIMEOUT}s: stopping the VM(s)"
    timed_out=1
    stop_vms
    break
  fi
  sleep 1
done
wait

# ---- 4. the result: the marker line each guest prints when the script has ended.
rc=0
for ((i = 0; i < VMS; i++)); do
  r=$(sed -n 's/.*SOFTROCE-RESULT node=[0-9] exit=\([0-9]*\).*/\1/p' "$WORK/vm$i.log" | tail -1)
  if [ -z "$r" ]; then
    r=125
    [ $timed_out = 0 ] || r=124
    log "vm$i reported no result ($([ "$r" = 124 ] && echo timed out || echo crashed or powered off early))"
  fi
  [ "$rc" != 0 ] || rc=$r
done
log "exit $rc after $((SECONDS - start))s in the VM(s)"
exit "$rc"
