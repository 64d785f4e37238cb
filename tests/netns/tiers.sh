# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034 # the variables are for the scripts that source this file
# tests/netns/tiers.sh: a two-tier cluster of namespace hosts on this one machine, on top of
# tests/netns/lib.sh (sourced from the same folder unless the caller has done so). Hierarchical
# algorithms only show their worth where the tiers differ, so every host gets two links (see
# docs/multihost.md, and the "Tiers" section of the project's measuring notes):
#   eth0   a veth into its cabinet's bridge (the fast tier, CAB_RATE)
#   spine  a veth into the one spine bridge (its own rail to the next tier, SPINE_RATE)
# Each host has ONE address, in its cabinet's subnet, on eth0. Hosts of other cabinets are
# reached through /32 routes over the spine with that same source address:
#   ip route add THEIR_ADDR/32 via THEIR_SPINE_ADDR dev spine src OWN_ADDR
# so every transport (podccl's bootstrap and ofi endpoint with PODCCL_SOCKET_IFNAME=eth0, Open
# MPI's TCP BTL) sees a single interface and a single address per host, while the kernel sends
# traffic within a cabinet over eth0 and traffic between cabinets over the host's spine link.
#
#   tiers_up LAYOUT [CAB_RATE] [SPINE_RATE]
#   tiers_up CABINETS HOSTS_PER_CABINET [CAB_RATE] [SPINE_RATE]
#       builds the cluster. LAYOUT says how many hosts each cabinet has and how many ranks each
#       host runs (the ranks are only recorded, in TIERS_SLOTS, for the caller's launcher):
#         CxH or CxHxP   C cabinets of H hosts, P ranks per host (default 1): "2x2x2"
#         P,P,..|P,..    cabinets separated by '|', hosts by ',', each number the ranks on that
#                        host: "3,1|2,2" = cabinet 0 with hosts of 3 and 1 ranks, cabinet 1 with
#                        hosts of 2 and 2 ranks; "2,2" alone is ONE cabinet of two 2-rank hosts
#       Quote a LAYOUT with '|' in the shell. Hosts are numbered cabinet by cabinet (cabinet 0's
#       hosts first). RATEs in tc bit units (1gbit, 250mbit) or none/empty for unshaped links;
#       each shapes both directions of every link of its tier with tbf, with lib.sh's burst and
#       queue rules computed from that tier's rate: a switch with full-duplex ports.
#   tiers_rate CAB_RATE SPINE_RATE   reshapes the live cluster (none: unshaped); cheaper than
#                                    building it again between unshaped and shaped parts
#   tiers_bytes I        "cab_tx cab_rx spine_tx spine_rx": bytes host I has sent and received
#                        on each of its links so far (bridge-side veth counters, swapped)
#   tiers_cab_bytes I, tiers_spine_bytes I   "tx rx" of one link
#   tiers_counters       one line with tiers_bytes of every host in turn (4 numbers per host),
#                        a snapshot to pass to tiers_link_report
#   tiers_link_report SNAPSHOT...   prints per host the bytes each link carried since SNAPSHOT
#                        and sets TIERS_DELTA[4*i + 0..3] (cab tx, cab rx, spine tx, spine rx)
#   tiers_topo_file PATH [CAB_RATE SPINE_RATE]
#                        writes the podccl topology file (PODCCL_TOPO_FILE) of the cluster:
#                        level "cabinet" (a group per cabinet, hosts by UTS host name, latency
#                        50 us) and level "cluster" (latency 100 us); bandwidth_GBps per rank: the
#                        rates given, else the shaped ones, over the most ranks on a host; an unshaped tier is declared at
#                        1gbit (cabinet) / 250mbit (spine), the same 4:1 tiers as the benchmark,
#                        so the library models the cluster the same way shaped or not
#   tiers_mpirun HOSTFILE [SLOTS...]   as lib.sh's netns_mpirun for this cluster (default slots
#                        TIERS_SLOTS): sets NETNS_MPIRUN; oob and btl_tcp are limited to
#                        TIERS_SUBNET, which holds every eth0 address and no spine address, so
#                        Open MPI also uses one interface per host and the same routes
#   tiers_down           kills what is left in the namespaces and removes everything (lib.sh's
#                        netns_down: the same trap runs it at exit, on failure, INT and TERM)
# lib.sh's netns_exec, netns_cmd, netns_track, netns_wait, netns_reachable, netns_skip and
# netns_atexit work on the cluster's hosts as on netns_up's (netns_bytes I gives host I's
# cabinet link: its bridge-side veth has lib.sh's name). One cluster at a time per script:
# tiers_up and netns_up share lib.sh's names and cleanup list, so call tiers_down (or
# netns_down) before switching.
#
# After tiers_up (also set: lib.sh's NETNS_N, NETNS_HOST, NETNS_ADDR, NETNS_SUBNET = TIERS_SUBNET,
# NETNS_BRIDGE/NETNS_BRADDR = cabinet 0's):
#   TIERS_NC, TIERS_NH, TIERS_NRANKS   cabinets, hosts, sum of TIERS_SLOTS
#   TIERS_HOST[i]        namespace name = UTS host name = hostfile name of host i (pc<pid>h<i>)
#   TIERS_ADDR[i]        its address on eth0, 10.<k>.<c>.<j+1> (c its cabinet, j its index there)
#   TIERS_SPINE_ADDR[i]  the address of its spine link, 10.<k>.128.<i+1> (routing only)
#   TIERS_CAB[i]         its cabinet; TIERS_SLOTS[i] its ranks from LAYOUT
#   TIERS_CAB_HOSTS[c]   the host indices of cabinet c ("0 1")
#   TIERS_CAB_SUBNET[c]  10.<k>.<c>.0/24; TIERS_CAB_BRIDGE[c] its bridge, TIERS_CAB_BRADDR[c] the
#                        root namespace's address on it (10.<k>.<c>.254): mpirun reaches every
#                        host through its cabinet's bridge
#   TIERS_SPINE_SUBNET, TIERS_SPINE_BRIDGE   10.<k>.128.0/24 and its bridge (no root address)
#   TIERS_SUBNET         10.<k>.0.0/17: every cabinet subnet and nothing else
#   TIERS_CAB_RATE, TIERS_SPINE_RATE (or empty), TIERS_CAB_RATE_BPS, TIERS_SPINE_RATE_BPS (0)
#   TIERS_LAYOUT         the layout in the P,P|P,P form
# k is picked by lib.sh's subnet search under its lock (a free 10.<k>.x.x: the root namespace
# has no address or route in it), so this runs beside run_netns.sh or another tiers run.
# IPv6 is off on every link: router and neighbour solicitations would otherwise put a few
# hundred bytes on every link and blur "this link carried nothing".

# Sourcing lib.sh twice would reset its cleanup list, so only if it is not loaded yet.
if ! declare -F netns_down >/dev/null; then
    # shellcheck source=lib.sh
    . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
fi

TIERS_NC=0
TIERS_NH=0
TIERS_NRANKS=0
TIERS_HOST=()
TIERS_ADDR=()
TIERS_SPINE_ADDR=()
TIERS_CAB=()
TIERS_SLOTS=()
TIERS_CAB_HOSTS=()
TIERS_CAB_SUBNET=()
TIERS_CAB_BRIDGE=()
TIERS_CAB_BRADDR=()
TIERS_SPINE_SUBNET=""
TIERS_SPINE_BRIDGE=""
TIERS_SUBNET=""
TIERS_CAB_RATE=""
TIERS_SPINE_RATE=""
TIERS_CAB_RATE_BPS=0
TIERS_SPINE_RATE_BPS=0
TIERS_LAYOUT=""
TIERS_DELTA=()
TIERS_SPINE_IFNAME=spine

# _tiers_parse LAYOUT: sets TIERS_SLOTS, TIERS_CAB, TIERS_CAB_HOSTS, TIERS_NC, TIERS_NH,
# TIERS_NRANKS, TIERS_LAYOUT; 2 with a message on bad input.
_tiers_parse() {
    local spec=$1 c h p i=0 cabs hosts cab
    TIERS_SLOTS=() TIERS_CAB=() TIERS_CAB_HOSTS=() TIERS_NRANKS=0
    if [[ $spec =~ ^([0-9]+)x([0-9]+)(x([0-9]+))?$ ]]; then
        c=${BASH_REMATCH[1]} h=${BASH_REMATCH[2]} p=${BASH_REMATCH[4]:-1}
        [ "$c" -ge 1 ] && [ "$h" -ge 1 ] && [ "$p" -ge 1 ] ||
            { echo "tiers_up: layout '$spec': counts must be >= 1" >&2; return 2; }
        spec=""
        for ((cab = 0; cab < c; cab++)); do
            hosts=""
            for ((i = 0; i < h; i++)); do hosts="$hosts${hosts:+,}$p"; done
            spec="$spec${spec:+|}$hosts"
        done
        i=0
    fi
    [[ $spec =~ ^[0-9]+(,[0-9]+)*(\|[0-9]+(,[0-9]+)*)*$ ]] ||
        { echo "tiers_up: layout '$1': use CxH, CxHxP or P,P|P,P (ranks per host, '|' between cabinets)" >&2; return 2; }
    IFS='|' read -r -a cabs <<<"$spec"
    for ((cab = 0; cab < ${#cabs[@]}; cab++)); do
        IFS=',' read -r -a hosts <<<"${cabs[cab]}"
        TIERS_CAB_HOSTS[cab]=""
        for p in "${hosts[@]}"; do
            p=$((10#$p))
            [ "$p" -ge 1 ] || { echo "tiers_up: layout '$1': a host with 0 ranks" >&2; return 2; }
            TIERS_SLOTS[i]=$p
            TIERS_CAB[i]=$cab
            TIERS_CAB_HOSTS[cab]="${TIERS_CAB_HOSTS[cab]}${TIERS_CAB_HOSTS[cab]:+ }$i"
            TIERS_NRANKS=$((TIERS_NRANKS + p))
            i=$((i + 1))
        done
        [ "${#hosts[@]}" -le 250 ] || { echo "tiers_up: at most 250 hosts per cabinet" >&2; return 2; }
    done
    TIERS_NC=${#cabs[@]}
    TIERS_NH=$i
    TIERS_LAYOUT=$spec
    [ "$TIERS_NC" -le 128 ] || { echo "tiers_up: at most 128 cabinets" >&2; return 2; }
    [ "$TIERS_NH" -le 250 ] || { echo "tiers_up: at most 250 hosts" >&2; return 2; }
    return 0
}

# _tiers_tbf RATE: sets _bps, _burst, _limit for RATE with lib.sh's rules (empty RATE: _bps=0).
_tiers_tbf() {
    _bps=0 _burst=0 _limit=0
    [ -n "$1" ] || return 0
    _bps=$(_netns_rate_bps "$1") ||
        { echo "tiers: rate '$1': use tc bit units, e.g. 250mbit, 1gbit" >&2; return 2; }
    _burst=$((_bps / 8 / 2000))
    [ "$_burst" -ge 65536 ] || _burst=65536
    _limit=$((_bps / 8 * ${NETNS_QUEUE_MS:-10} / 1000 + _burst))
}

# _tiers_shape_link NS DEV VETH RATE: tbf on both ends of one link (host egress on DEV inside NS,
# bridge egress on VETH), or none when RATE is empty. Returns 1 with the message in _err.
_tiers_shape_link() {
    local ns=$1 dev=$2 veth=$3 rate=$4 _bps _burst _limit
    _tiers_tbf "$rate" || return 2
    if [ -z "$rate" ]; then
        tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null
        tc qdisc del dev "$veth" root 2>/dev/null
        return 0
    fi
    _err=$(tc -n "$ns" qdisc replace dev "$dev" root tbf rate "$rate" burst "$_burst" \
        limit "$_limit" 2>&1) &&
        _err=$(tc qdisc replace dev "$veth" root tbf rate "$rate" burst "$_burst" limit "$_limit" 2>&1)
}

# tiers_rate CAB_RATE SPINE_RATE: shapes (or, with none/empty, unshapes) every link of each tier.
tiers_rate() {
    local cr=${1:-} sr=${2:-} i _bps _burst _limit _err
    [ "$cr" = none ] && cr=""
    [ "$sr" = none ] && sr=""
    if [ -n "$cr$sr" ]; then
        command -v tc >/dev/null 2>&1 || netns_skip "the 'tc' command (iproute2) is missing"
    fi
    _tiers_tbf "$cr" || return 2
    TIERS_CAB_RATE_BPS=$_bps
    _tiers_tbf "$sr" || return 2
    TIERS_SPINE_RATE_BPS=$_bps
    TIERS_CAB_RATE=$cr TIERS_SPINE_RATE=$sr
    # lib.sh's names, for scripts that print them: the cabinet tier is "the" link.
    NETNS_RATE=$cr NETNS_RATE_BPS=$TIERS_CAB_RATE_BPS
    for ((i = 0; i < TIERS_NH; i++)); do
        _tiers_shape_link "${TIERS_HOST[i]}" "$NETNS_IFNAME" "${NETNS_PREFIX}v$i" "$cr" &&
            _tiers_shape_link "${TIERS_HOST[i]}" "$TIERS_SPINE_IFNAME" "${NETNS_PREFIX}s$i" "$sr" ||
            netns_skip "tc tbf failed: ${_err:-?}"
    done
    return 0
}

# _tiers_noipv6 DEV [NS]: no IPv6 on DEV (quietly nothing where IPv6 is absent).
_tiers_noipv6() {
    if [ -n "${2:-}" ]; then
        ip netns exec "$2" sh -c "echo 1 >/proc/sys/net/ipv6/conf/$1/disable_ipv6" 2>/dev/null
    else
        [ -w "/proc/sys/net/ipv6/conf/$1/disable_ipv6" ] && echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6"
    fi
    return 0
}

# _tiers_veth I NS IFNAME BRIDGE_SIDE BRIDGE: a veth from NS (named IFNAME there) into BRIDGE.
_tiers_veth() {
    local i=$1 ns=$2 ifn=$3 v=$4 br=$5 p=${NETNS_PREFIX}t$1 err
    if ! err=$(ip link add "$v" type veth peer name "$p" 2>&1); then
        netns_skip "can't create a veth pair: $err"
    fi
    _netns_made+=("link:$v")
    _tiers_noipv6 "$v"
    ip link set "$p" netns "$ns" &&
        ip -n "$ns" link set "$p" name "$ifn" &&
        _tiers_noipv6 "$ifn" "$ns" &&
        ip -n "$ns" link set "$ifn" up &&
        ip link set "$v" master "$br" &&
        ip link set "$v" up
}

# _tiers_bridge NAME [ADDR/24]: a bridge in the root namespace, up, with ADDR if given.
_tiers_bridge() {
    local err
    if ! err=$(ip link add "$1" type bridge 2>&1); then
        netns_skip "can't create a bridge: $err"
    fi
    _netns_made+=("link:$1")
    _tiers_noipv6 "$1"
    { [ -z "${2:-}" ] || ip addr add "$2" dev "$1"; } && ip link set "$1" up
}

# _tiers_reach NS ADDR: 0 if a TCP connect from host namespace NS to ADDR:9 is answered.
_tiers_reach() {
    local out
    out=$(ip netns exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
    case $out in *refused*) return 0 ;; esac
    return 1
}

tiers_up() {
    local spec cr sr i j c g ns v lockf _k err tries ok
    # Cleanup first (lib.sh's trap), so that a skip below still runs the caller's atexit hooks.
    trap _netns_trap EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap '' PIPE
    if [[ ${1:-} =~ ^[0-9]+$ ]] && [[ ${2:-} =~ ^[0-9]+$ ]]; then
        spec=${1}x$2 cr=${3:-} sr=${4:-}
    else
        spec=${1:-} cr=${2:-} sr=${3:-}
    fi
    [ "$NETNS_N" = 0 ] || { echo "tiers_up: a cluster is up already (tiers_down first)" >&2; return 2; }
    _tiers_parse "$spec" || return 2
    [ "$cr" = none ] && cr=""
    [ "$sr" = none ] && sr=""
    # Check the rates before making anything.
    local _bps _burst _limit
    _tiers_tbf "$cr" && _tiers_tbf "$sr" || return 2
    [ "$(id -u)" = 0 ] || netns_skip "needs root for network namespaces (uid $(id -u))"
    command -v ip >/dev/null 2>&1 || netns_skip "the 'ip' command (iproute2) is missing"
    if [ -n "$cr$sr" ]; then
        command -v tc >/dev/null 2>&1 || netns_skip "the 'tc' command (iproute2) is missing"
    fi
    if ! err=$(ip netns add "${NETNS_PREFIX}probe" 2>&1); then
        netns_skip "'ip netns add' failed: $err"
    fi
    ip netns del "${NETNS_PREFIX}probe"

    # The subnet: lib.sh's search and lock. The whole 10.<k>.0.0/16 is ours once the first
    # bridge address in it is on the root namespace (other runs see it there and skip k).
    lockf=/run/lock/podccl-netns.lock
    [ -d /run/lock ] || lockf=/tmp/podccl-netns.lock
    exec 9>"$lockf"
    flock -w 60 9 || { echo "tiers_up: could not lock $lockf" >&2; return 1; }
    _netns_pick_subnet || { flock -u 9; netns_skip "no free subnet 10.100-199.0.0/16"; }
    TIERS_SUBNET=10.$_k.0.0/17
    TIERS_SPINE_SUBNET=10.$_k.128.0/24
    TIERS_SPINE_BRIDGE=${NETNS_PREFIX}sp
    for ((c = 0; c < TIERS_NC; c++)); do
        TIERS_CAB_SUBNET[c]=10.$_k.$c.0/24
        TIERS_CAB_BRIDGE[c]=${NETNS_PREFIX}b$c
        TIERS_CAB_BRADDR[c]=10.$_k.$c.254
    done
    _tiers_bridge "${TIERS_CAB_BRIDGE[0]}" "${TIERS_CAB_BRADDR[0]}/24"
    v=$?
    flock -u 9
    exec 9>&-
    [ $v = 0 ] || { echo "tiers_up: can't configure bridge ${TIERS_CAB_BRIDGE[0]}" >&2; return 1; }
    for ((c = 1; c < TIERS_NC; c++)); do
        _tiers_bridge "${TIERS_CAB_BRIDGE[c]}" "${TIERS_CAB_BRADDR[c]}/24" ||
            { echo "tiers_up: can't configure bridge ${TIERS_CAB_BRIDGE[c]}" >&2; return 1; }
    done
    _tiers_bridge "$TIERS_SPINE_BRIDGE" ||
        { echo "tiers_up: can't configure bridge $TIERS_SPINE_BRIDGE" >&2; return 1; }
    NETNS_SUBNET=$TIERS_SUBNET
    NETNS_BRIDGE=${TIERS_CAB_BRIDGE[0]}
    NETNS_BRADDR=${TIERS_CAB_BRADDR[0]}

    for ((c = 0; c < TIERS_NC; c++)); do
        j=0
        for i in ${TIERS_CAB_HOSTS[c]}; do
            TIERS_HOST[i]=${NETNS_PREFIX}h$i
            TIERS_ADDR[i]=10.$_k.$c.$((j + 1))
            TIERS_SPINE_ADDR[i]=10.$_k.128.$((i + 1))
            j=$((j + 1))
        done
    done
    for ((i = 0; i < TIERS_NH; i++)); do
        ns=${TIERS_HOST[i]}
        ip netns add "$ns" || { echo "tiers_up: ip netns add $ns failed" >&2; return 1; }
        _netns_made+=("ns:$ns")
        # Make lib.sh's helpers (netns_cmd, netns_down's count) see the host as soon as it exists.
        NETNS_HOST[i]=$ns NETNS_ADDR[i]=${TIERS_ADDR[i]} NETNS_N=$((i + 1))
        ip netns exec "$ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null
        c=${TIERS_CAB[i]}
        _tiers_veth "$i" "$ns" "$NETNS_IFNAME" "${NETNS_PREFIX}v$i" "${TIERS_CAB_BRIDGE[c]}" &&
            ip -n "$ns" addr add "${TIERS_ADDR[i]}/24" dev "$NETNS_IFNAME" &&
            _tiers_veth "$i" "$ns" "$TIERS_SPINE_IFNAME" "${NETNS_PREFIX}s$i" "$TIERS_SPINE_BRIDGE" &&
            ip -n "$ns" addr add "${TIERS_SPINE_ADDR[i]}/24" dev "$TIERS_SPINE_IFNAME" &&
            ip -n "$ns" link set lo up ||
            { echo "tiers_up: configuring host $i ($ns) failed" >&2; return 1; }
    done
    # The routes: every other cabinet's host through its spine address, from our one address.
    for ((i = 0; i < TIERS_NH; i++)); do
        for ((g = 0; g < TIERS_NH; g++)); do
            [ "${TIERS_CAB[g]}" != "${TIERS_CAB[i]}" ] || continue
            ip -n "${TIERS_HOST[i]}" route add "${TIERS_ADDR[g]}/32" via "${TIERS_SPINE_ADDR[g]}" \
                dev "$TIERS_SPINE_IFNAME" src "${TIERS_ADDR[i]}" ||
                { echo "tiers_up: route on host $i to host $g failed" >&2; return 1; }
        done
    done
    tiers_rate "$cr" "$sr" || return 1
    # Wait until the bridges forward: the root namespace must reach every host through its
    # cabinet bridge (as lib.sh checks), and host 0 every other host (over the spine for other
    # cabinets) and every host host 0 (so every spine port and every route back is tried).
    tries=0
    while :; do
        ok=1
        for ((i = 0; i < TIERS_NH; i++)); do
            netns_reachable "${TIERS_ADDR[i]}" || { ok=0; break; }
            [ "$i" = 0 ] && continue
            _tiers_reach "${TIERS_HOST[0]}" "${TIERS_ADDR[i]}" &&
                _tiers_reach "${TIERS_HOST[i]}" "${TIERS_ADDR[0]}" || { ok=0; break; }
        done
        [ $ok = 1 ] && break
        tries=$((tries + 1))
        [ $tries -lt 100 ] || { echo "tiers_up: host $i unreachable (cabinet bridge or spine)" >&2; return 1; }
        sleep 0.1
    done
    return 0
}

tiers_down() {
    netns_down
    TIERS_NC=0 TIERS_NH=0 TIERS_NRANKS=0
    TIERS_HOST=() TIERS_ADDR=() TIERS_SPINE_ADDR=() TIERS_CAB=() TIERS_SLOTS=()
    TIERS_CAB_HOSTS=() TIERS_CAB_SUBNET=() TIERS_CAB_BRIDGE=() TIERS_CAB_BRADDR=()
    return 0
}

# _tiers_link_bytes VETH: "tx rx" as the host sees them (the bridge side's rx is the host's tx).
_tiers_link_bytes() {
    local d=/sys/class/net/$1/statistics
    echo "$(cat "$d/rx_bytes") $(cat "$d/tx_bytes")"
}
tiers_cab_bytes() { _tiers_link_bytes "${NETNS_PREFIX}v$1"; }
tiers_spine_bytes() { _tiers_link_bytes "${NETNS_PREFIX}s$1"; }
tiers_bytes() { echo "$(tiers_cab_bytes "$1") $(tiers_spine_bytes "$1")"; }
tiers_counters() {
    local i out=""
    for ((i = 0; i < TIERS_NH; i++)); do out="$out $(tiers_bytes "$i")"; done
    echo "${out# }"
}

# tiers_link_report SNAPSHOT...: per host, bytes on each link since SNAPSHOT (tiers_counters'
# words); sets TIERS_DELTA.
tiers_link_report() {
    local now before=("$@") i k
    read -r -a now <<<"$(tiers_counters)"
    TIERS_DELTA=()
    for ((k = 0; k < 4 * TIERS_NH; k++)); do TIERS_DELTA[k]=$((now[k] - ${before[k]:-0})); done
    for ((i = 0; i < TIERS_NH; i++)); do
        printf '  host %d (%s, cabinet %d, %s): cabinet link sent %d B, received %d B; spine link sent %d B, received %d B\n' \
            "$i" "${TIERS_HOST[i]}" "${TIERS_CAB[i]}" "${TIERS_ADDR[i]}" \
            "${TIERS_DELTA[4 * i]}" "${TIERS_DELTA[4 * i + 1]}" "${TIERS_DELTA[4 * i + 2]}" "${TIERS_DELTA[4 * i + 3]}"
    done
}

# _tiers_gbps RATE DEFAULT: GB/s (1e9 B/s) of a tc rate, or of DEFAULT when RATE is empty.
_tiers_gbps() {
    local b
    b=$(_netns_rate_bps "${1:-$2}") || { echo "tiers_topo_file: rate '${1:-$2}'" >&2; return 2; }
    awk -v b="$b" -v p="${3:-1}" 'BEGIN { printf "%.6g", b / 8e9 / p }'
}

tiers_topo_file() {
    local path=$1 cab spine c i sep hosts ppn=1
    # The file gives bandwidth per rank: a host's link shared by its ranks (the busiest host).
    for i in "${TIERS_SLOTS[@]}"; do [ "$i" -gt "$ppn" ] && ppn=$i; done
    cab=$(_tiers_gbps "${2:-$TIERS_CAB_RATE}" 1gbit "$ppn") || return 2
    spine=$(_tiers_gbps "${3:-$TIERS_SPINE_RATE}" 250mbit "$ppn") || return 2
    {
        echo '{"levels": ['
        printf '  {"name": "cabinet", "bandwidth_GBps": %s, "latency_us": 50, "memory_semantics": false,\n' "$cab"
        printf '   "groups": ['
        for ((c = 0; c < TIERS_NC; c++)); do
            hosts="" sep=""
            for i in ${TIERS_CAB_HOSTS[c]}; do hosts="$hosts$sep\"${TIERS_HOST[i]}\"" sep=", "; done
            printf '%s{"name": "cab%d", "hosts": [%s]}' "$([ $c = 0 ] || printf ',\n              ')" "$c" "$hosts"
        done
        echo ']},'
        printf '  {"name": "cluster", "bandwidth_GBps": %s, "latency_us": 100, "memory_semantics": false}\n' "$spine"
        echo ']}'
    } >"$path"
}

tiers_mpirun() {
    local hf=$1
    shift
    if [ $# = 0 ]; then
        netns_mpirun "$hf" "${TIERS_SLOTS[@]}"
    else
        netns_mpirun "$hf" "$@"
    fi
}
