#!/bin/sh
# PID 1 of a vm-run.sh guest (modeled on the shared softroce recipe's guest-init.sh): mount the
# basics, load the modules, build the soft-RoCE fabric, run /run-test.sh, print its exit code on
# the marker line vm-run.sh looks for, power off.
#   one VM:  veth pair vA 10.9.0.1 (rxeA) <-> vB 10.9.0.2 (rxeB), policy routing between them
#   two VMs: eth0 10.9.1.1 / 10.9.1.2 (rxe0 each) over a QEMU UDP socket link
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
echo
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts
# /tmp may already hold files copied in; only mount a tmpfs over an empty one.
[ -n "$(ls -A /tmp)" ] || mount -t tmpfs tmpfs /tmp
# shellcheck disable=SC2163 # exports the NAME=VALUE words themselves
for w in $(cat /proc/cmdline); do case $w in SOFTROCE_*=*) export "$w" ;; esac; done
for m in $(cat /etc/modules-order); do insmod "/lib/modules/$m" || echo "guest-init: insmod $m failed"; done
ip link set lo up

if [ "$SOFTROCE_VMS" = 2 ]; then
  export SOFTROCE_ADDR=10.9.1.$((SOFTROCE_NODE + 1)) SOFTROCE_PEER=10.9.1.$((2 - SOFTROCE_NODE))
  export SOFTROCE_DEVS=rxe0
  ip addr add "$SOFTROCE_ADDR/24" dev eth0
  ip link set eth0 up
  rdma link add rxe0 type rxe netdev eth0
else
  export SOFTROCE_NODE=0 SOFTROCE_ADDR=10.9.0.1 SOFTROCE_PEER=10.9.0.2 SOFTROCE_DEVS="rxeA rxeB"
  ip link add vA type veth peer name vB
  ip addr add 10.9.0.1/24 dev vA
  ip addr add 10.9.0.2/24 dev vB
  ip link set vA up
  ip link set vB up
  # Both addresses are local, so the kernel would carry traffic between them over lo, where rxe
  # never sees it. Route locally generated packets for each address out of the other veth end
  # instead (the local table moves behind these rules), and accept them on arrival.
  ip rule add pref 10 iif lo to 10.9.0.2 lookup 100
  ip route add 10.9.0.2 dev vA src 10.9.0.1 table 100
  ip rule add pref 11 iif lo to 10.9.0.1 lookup 101
  ip route add 10.9.0.1 dev vB src 10.9.0.2 table 101
  ip rule add pref 100 lookup local
  ip rule del pref 0 lookup local
  for c in all vA vB; do
    echo 1 > /proc/sys/net/ipv4/conf/$c/accept_local
    echo 0 > /proc/sys/net/ipv4/conf/$c/rp_filter
  done
  rdma link add rxeA type rxe netdev vA
  rdma link add rxeB type rxe netdev vB
fi
printf '127.0.0.1 localhost\n%s softroce%s\n' "$SOFTROCE_ADDR" "$SOFTROCE_NODE" > /etc/hosts
hostname "softroce$SOFTROCE_NODE"

# Start the test on a working fabric: ports ACTIVE and, with two VMs, the peer answering.
i=0
while rdma link | grep -qv ACTIVE && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
if [ "$SOFTROCE_VMS" = 2 ]; then
  i=0
  until ping -c 1 -W 1 "$SOFTROCE_PEER" > /dev/null 2>&1 || [ $i -ge 120 ]; do i=$((i + 1)); done
fi
echo "guest-init: node $SOFTROCE_NODE ready ($SOFTROCE_ADDR, peer $SOFTROCE_PEER, devices $SOFTROCE_DEVS)"
rdma link

cd / && /run-test.sh < /dev/null
rc=$?
echo "SOFTROCE-RESULT node=$SOFTROCE_NODE exit=$rc"
# A peer may still be finishing its last exchange with us.
[ "$SOFTROCE_VMS" = 2 ] && sleep 2
poweroff -f
