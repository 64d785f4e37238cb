# shellcheck shell=bash
# tests/netns/lib.sh: "hosts" made of Linux network namespaces on this one machine, for multi-host
# tests and benchmarks. Sourced by bash scripts (tests/run_netns.sh, bench/netns-bench.sh).
#
#   netns_up N [RATE]   creates N hosts (a network namespace each) joined by a bridge in the root
#                       namespace; RATE (tc syntax: 100mbit, 1gbit, 10gbit) shapes each host's
#                       link with tbf in both directions, i.e. a full-duplex NIC of that rate.
#   netns_exec I CMD... runs CMD on host I (0-based): in its namespace, with the host's name as
#                       UTS hostname (netns_cmd I gives the prefix as an array, NETNS_CMD).
#   netns_bytes I       "tx rx": bytes host I has sent and received on its link so far.
#   netns_down          kills every process left in the namespaces and removes everything; runs
#                       at exit, on failure, INT and TERM too (trap). netns_up may follow again.
#   netns_atexit CMD    a shell command to run at exit, after the namespaces are gone.
#   netns_track PID     a root-namespace process (mpirun) that cleanup ends too; netns_wait PID
#                       waits for it in a way that INT/TERM can interrupt.
#   netns_skip REASON   prints REASON and exits 77 (automake's SKIP).
#
# After netns_up:
#   NETNS_N             number of hosts
#   NETNS_HOST[i]       namespace name of host i (also its UTS hostname and, for mpirun, the
#                       name in the hostfile): pc<pid>h<i>, so that concurrent runs don't collide
#   NETNS_ADDR[i]       its address, 10.<k>.0.<i+1>, on the device NETNS_IFNAME (eth0)
#   NETNS_SUBNET        10.<k>.0.0/24, k in 100..199 (searched from an offset given by the pid),
#                       the first that no interface or route on this machine uses (chosen under
#                       a lock, so concurrent runs differ)
#   NETNS_BRIDGE, NETNS_BRADDR   the bridge in the root namespace and its address 10.<k>.0.254:
#                       processes in the root namespace (mpirun) reach the hosts through it
#   NETNS_RATE          RATE or empty; NETNS_RATE_BPS the same in bits/s (0 if none)
#   NETNS_BURST, NETNS_LIMIT   the tbf burst and queue in bytes
#
# Shaping. tc tbf on the namespace side of each veth (host -> bridge) and on the bridge side
# (bridge -> host). Both directions pass through it, so traffic between two hosts is shaped at
# the sender's egress and again at the receiver's ingress, at the same rate: a switch with
# full-duplex ports of RATE. Parameters (this kernel has hrtimers, so tbf releases packets
# between ticks and burst need not cover a 4 ms tick of HZ=250):
#   burst = max(64 KiB, RATE x 0.5 ms)  64 KiB holds one whole GSO packet of a veth (tbf would
#                                       otherwise split it into MSS segments, costing CPU); 0.5 ms
#                                       keeps the error on a timed transfer small (at 1gbit a
#                                       1 MiB message can gain at most 64 KiB, ~6%, over the rate)
#   limit = RATE x 10 ms + burst        a 10 ms queue (1.3 MB at 1gbit): no drops for the few TCP
#                                       flows of a collective (a 2 ms queue dropped 10% of the
#                                       packets of an Open MPI all-gather); NETNS_QUEUE_MS=N
#                                       sets another length
# Measured at 1gbit: one TCP stream 0.957 Gbit/s of payload, two opposite ones 0.935 + 0.938.
# The kernel here has no netem: delay can't be added (see tests/softroce for VMs with netem).

# shellcheck disable=SC2034 # the variables are for the scripts that source this file
NETNS_IFNAME=eth0
NETNS_N=0
NETNS_HOST=()
NETNS_ADDR=()
NETNS_BRIDGE=""
NETNS_BRADDR=""
NETNS_SUBNET=""
NETNS_RATE=""
NETNS_RATE_BPS=0
NETNS_BURST=0
NETNS_LIMIT=0
NETNS_PREFIX="pc$$"
_netns_atexit=""
_netns_pids=""
_netns_made=()

netns_skip() {
    echo "${0##*/}: SKIP: $*"
    exit 77
}

netns_atexit() {
    _netns_atexit="$_netns_atexit
$1"
}

# _netns_rate_bps RATE: bits/s of a tc rate written in bit units, or nothing.
_netns_rate_bps() {
    local v u
    v=$(printf '%s' "$1" | sed -n 's/^\([0-9][0-9]*\)\([kmgt]\{0,1\}bit\)$/\1/p')
    u=$(printf '%s' "$1" | sed -n 's/^\([0-9][0-9]*\)\([kmgt]\{0,1\}bit\)$/\2/p')
    [ -n "$v" ] || return 1
    case $u in
    bit) echo "$v" ;;
    kbit) echo $((v * 1000)) ;;
    mbit) echo $((v * 1000000)) ;;
    gbit) echo $((v * 1000000000)) ;;
    tbit) echo $((v * 1000000000000)) ;;
    esac
}

# _netns_pick_subnet: sets _k to a free 10.<k>.0.0/24. Caller holds the lock.
_netns_pick_subnet() {
    local used start i
    used=$(ip -4 -o addr show 2>/dev/null; ip -4 route show table all 2>/dev/null)
    start=$(($$ % 100))
    for i in $(seq 0 99); do
        _k=$((100 + (start + i) % 100))
        case $used in *" 10.$_k."*) continue ;; esac
        return 0
    done
    return 1
}

_netns_trap() {
    local rc=$?
    trap - EXIT INT TERM
    netns_down
    [ -z "$_netns_atexit" ] || eval "$_netns_atexit" || true
    exit $rc
}

netns_up() {
    local n=$1 rate=${2:-} i ns v p lockf _k
    # Cleanup first, so that a skip below still runs the caller's netns_atexit hooks.
    trap _netns_trap EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap '' PIPE
    case $n in '' | *[!0-9]*) echo "netns_up: bad host count '$n'" >&2; return 2 ;; esac
    [ "$n" -ge 1 ] && [ "$n" -le 250 ] || { echo "netns_up: 1..250 hosts" >&2; return 2; }
    [ "$(id -u)" = 0 ] || netns_skip "needs root for network namespaces (uid $(id -u))"
    command -v ip >/dev/null 2>&1 || netns_skip "the 'ip' command (iproute2) is missing"
    if [ -n "$rate" ] && [ "$rate" != none ]; then
        command -v tc >/dev/null 2>&1 || netns_skip "the 'tc' command (iproute2) is missing"
        NETNS_RATE_BPS=$(_netns_rate_bps "$rate") ||
            { echo "netns_up: rate '$rate': use tc bit units, e.g. 100mbit, 1gbit" >&2; return 2; }
        NETNS_RATE=$rate
        NETNS_BURST=$((NETNS_RATE_BPS / 8 / 2000))
        [ "$NETNS_BURST" -ge 65536 ] || NETNS_BURST=65536
        NETNS_LIMIT=$((NETNS_RATE_BPS / 8 * ${NETNS_QUEUE_MS:-10} / 1000 + NETNS_BURST))
    fi

    # Probe first: a namespace that can't be made is a skip, not a failure.
    local err
    if ! err=$(ip netns add "${NETNS_PREFIX}probe" 2>&1); then
        netns_skip "'ip netns add' failed: $err"
    fi
    ip netns del "${NETNS_PREFIX}probe"

    lockf=/run/lock/podccl-netns.lock
    [ -d /run/lock ] || lockf=/tmp/podccl-netns.lock
    exec 9>"$lockf"
    flock -w 60 9 || { echo "netns_up: could not lock $lockf" >&2; return 1; }
    _netns_pick_subnet || { flock -u 9; netns_skip "no free subnet 10.100-199.0.0/24"; }
    NETNS_SUBNET=10.$_k.0.0/24
    NETNS_BRIDGE=${NETNS_PREFIX}br
    NETNS_BRADDR=10.$_k.0.254
    if ! err=$(ip link add "$NETNS_BRIDGE" type bridge 2>&1); then
        flock -u 9
        netns_skip "can't create a bridge: $err"
    fi
    _netns_made+=("link:$NETNS_BRIDGE")
    ip addr add "$NETNS_BRADDR/24" dev "$NETNS_BRIDGE" && ip link set "$NETNS_BRIDGE" up
    v=$?
    flock -u 9
    exec 9>&-
    [ $v = 0 ] || { echo "netns_up: can't configure bridge $NETNS_BRIDGE" >&2; return 1; }

    for ((i = 0; i < n; i++)); do
        ns=${NETNS_PREFIX}h$i
        v=${NETNS_PREFIX}v$i
        p=${NETNS_PREFIX}p$i
        ip netns add "$ns" || { echo "netns_up: ip netns add $ns failed" >&2; return 1; }
        _netns_made+=("ns:$ns")
        if ! err=$(ip link add "$v" type veth peer name "$p" 2>&1); then
            netns_skip "can't create a veth pair: $err"
        fi
        _netns_made+=("link:$v")
        ip link set "$p" netns "$ns" &&
            ip -n "$ns" link set "$p" name "$NETNS_IFNAME" &&
            ip -n "$ns" addr add "10.$_k.0.$((i + 1))/24" dev "$NETNS_IFNAME" &&
            ip -n "$ns" link set "$NETNS_IFNAME" up &&
            ip -n "$ns" link set lo up &&
            ip link set "$v" master "$NETNS_BRIDGE" &&
            ip link set "$v" up ||
            { echo "netns_up: configuring host $i ($ns) failed" >&2; return 1; }
        if [ -n "$NETNS_RATE" ]; then
            if ! err=$(tc -n "$ns" qdisc add dev "$NETNS_IFNAME" root tbf rate "$NETNS_RATE" \
                burst "$NETNS_BURST" limit "$NETNS_LIMIT" 2>&1) ||
                ! err=$(tc qdisc add dev "$v" root tbf rate "$NETNS_RATE" burst "$NETNS_BURST" \
                    limit "$NETNS_LIMIT" 2>&1); then
                netns_skip "tc tbf failed: $err"
            fi
        fi
        NETNS_HOST[i]=$ns
        NETNS_ADDR[i]=10.$_k.0.$((i + 1))
    done
    NETNS_N=$n
    # The bridge forwards only once its ports leave the listening state: wait until every
    # host answers a TCP connect from the root namespace (a refused connection is an answer).
    local tries=0 ok
    while :; do
        ok=1
        for ((i = 0; i < n; i++)); do
            netns_reachable "${NETNS_ADDR[i]}" || ok=0
        done
        [ $ok = 1 ] && break
        tries=$((tries + 1))
        [ $tries -lt 100 ] || { echo "netns_up: hosts unreachable through $NETNS_BRIDGE" >&2; return 1; }
        sleep 0.1
    done
    return 0
}

# netns_reachable ADDR: 0 if a TCP connect to ADDR:9 from here is answered (accepted or refused).
netns_reachable() {
    local out
    out=$(timeout 2 bash -c "exec 3<>/dev/tcp/$1/9" 2>&1)
    [ $? = 0 ] && return 0
    case $out in *refused*) return 0 ;; esac
    return 1
}

netns_exec() {
    netns_cmd "$1" || return 2
    shift
    "${NETNS_CMD[@]}" "$@"
}

# netns_cmd I: sets the array NETNS_CMD to the prefix that runs a command on host I, for callers
# that need the pid of the command itself: "${NETNS_CMD[@]}" prog args & gives prog's pid in $!
# (ip netns exec, unshare and sh all exec).
netns_cmd() {
    [ -n "${NETNS_HOST[$1]:-}" ] || { echo "netns_cmd: no host '$1'" >&2; return 2; }
    NETNS_CMD=(ip netns exec "${NETNS_HOST[$1]}" unshare --uts sh -c 'hostname "$0" && exec "$@"'
        "${NETNS_HOST[$1]}")
}

# netns_bytes I: "tx rx" bytes of host I's link so far, as the host sees them (read on the
# bridge side of its veth, where tx and rx are swapped).
netns_bytes() {
    local d=/sys/class/net/${NETNS_PREFIX}v$1/statistics
    echo "$(cat "$d/rx_bytes") $(cat "$d/tx_bytes")"
}

# netns_track PID...: processes of the root namespace (mpirun, timeout) that cleanup must end
# too: they get SIGTERM (timeout passes it on to its command), then SIGKILL.
netns_track() {
    _netns_pids="$_netns_pids $*"
}

# netns_wait PID: waits for a tracked child; unlike a foreground command, the wait builtin lets a
# trapped INT or TERM through at once. Returns its exit status.
netns_wait() {
    local rc
    wait "$1"
    rc=$?
    _netns_pids=$(echo "$_netns_pids" | sed "s/ $1\b//")
    return $rc
}

netns_down() {
    local k item ns pids p
    if [ -n "${_netns_pids// /}" ]; then
        # shellcheck disable=SC2086
        kill -TERM $_netns_pids 2>/dev/null
        for k in 1 2 3 4 5 6 7 8 9 10; do
            pids=""
            for p in $_netns_pids; do kill -0 "$p" 2>/dev/null && pids="$pids $p"; done
            [ -n "$pids" ] || break
            sleep 0.2
        done
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
        _netns_pids=""
    fi
    # Every process still in a namespace: kill, then wait until the namespace is empty.
    for item in "${_netns_made[@]}"; do
        case $item in ns:*) ;; *) continue ;; esac
        ns=${item#ns:}
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            pids=$(ip netns pids "$ns" 2>/dev/null)
            [ -n "$pids" ] || break
            # shellcheck disable=SC2086
            kill -9 $pids 2>/dev/null
            sleep 0.1
        done
    done
    for item in "${_netns_made[@]}"; do
        case $item in
        ns:*) ip netns del "${item#ns:}" 2>/dev/null ;;
        link:*) ip link del "${item#link:}" 2>/dev/null ;;
        esac
    done
    _netns_made=()
    NETNS_N=0
    NETNS_HOST=()
    NETNS_ADDR=()
    return 0
}

# ---- Open MPI across the namespace hosts

NETNS_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# netns_mpirun HOSTFILE SLOTS0 [SLOTS1 ...]: writes HOSTFILE naming host i with SLOTSi slots and
# sets the array NETNS_MPIRUN to an mpirun command line (without -np and the program) that starts
# the ranks there:
#   --mca plm_rsh_agent rsh-agent.sh   "ssh" into a namespace host (see rsh-agent.sh)
#   --mca plm_rsh_no_tree_spawn 1      every orted is started by mpirun itself, from the root
#                                      namespace, not by another orted inside a namespace
#   --mca oob_tcp_if_include SUBNET    the orteds reach mpirun (in the root namespace) through the
#                                      bridge address, and each other through their eth0
#   --mca btl tcp,self --mca pml ob1   MPI traffic goes over TCP, also between ranks of one host,
#   --mca btl_tcp_if_include SUBNET    and only over the test links (the shaped ones)
#   --bind-to none                     every namespace host has the same 2 real cores: binding
#                                      per host would put each host's first rank on core 0
# Extra mpirun flags can come in NETNS_MPIRUN_EXTRA (words).
netns_mpirun() {
    local hf=$1 i=0 s
    shift
    : >"$hf" || return 1
    for s in "$@"; do
        [ "$s" -gt 0 ] && echo "${NETNS_HOST[i]} slots=$s" >>"$hf"
        i=$((i + 1))
    done
    NETNS_MPIRUN=("${MPIRUN:-mpirun}")
    [ "$(id -u)" = 0 ] && NETNS_MPIRUN+=(--allow-run-as-root)
    # shellcheck disable=SC2054 # tcp,self is one word
    NETNS_MPIRUN+=(--hostfile "$hf" --mca plm_rsh_agent "$NETNS_LIBDIR/rsh-agent.sh"
        --mca plm_rsh_no_tree_spawn 1 --mca oob_tcp_if_include "$NETNS_SUBNET"
        --mca btl tcp,self --mca pml ob1 --mca btl_tcp_if_include "$NETNS_SUBNET"
        --bind-to none)
    # shellcheck disable=SC2206
    [ -z "${NETNS_MPIRUN_EXTRA:-}" ] || NETNS_MPIRUN+=($NETNS_MPIRUN_EXTRA)
    return 0
}

# netns_have_mpirun: 0 if an Open MPI mpirun is there (the rsh agent and MCA flags are Open MPI's).
netns_have_mpirun() {
    local m=${MPIRUN:-mpirun}
    [ "$m" != no ] && command -v "$m" >/dev/null 2>&1 && "$m" --version 2>&1 | grep -q "Open MPI"
}
