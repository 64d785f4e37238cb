#!/bin/bash
# run_torch_ddp.sh: DistributedDataParallel training on the podccl torch backend (podccl_torch):
# tests/torch/ddp_digits.py trains a small CNN on scikit-learn's bundled digits data, gathers every
# rank's parameters through the backend and checks they are bitwise identical on every rank; rank
# 0 prints the test accuracy. Four parts, each with its own verdict:
#   a. 2 ranks with podccl, then 2 ranks with gloo, same seeds (env:// bootstrap): the final
#      parameters must be equal bit for bit (at 2 ranks a + b does not depend on the order); then
#      3 ranks with podccl (tcp:// init): identical on every rank, accuracy above $floor (a correct
#      run gets about 0.96; an all-reduce that sums without averaging diverges to about 0.1);
#   b. the same 2-rank training started by Debian's torchrun (--standalone --nproc_per_node 2):
#      must end with the same parameters as the 2-rank podccl run of part a, bit for bit;
#   c. two network-namespace "hosts" (tests/netns/lib.sh), one rank each, env:// bootstrap with
#      MASTER_ADDR = host 0's address: podccl's traffic crosses the veth links over the network
#      transport (PODCCL_NET=ofi, PODCCL_SOCKET_IFNAME=eth0); parameters again equal to part a's,
#      and both links carried the gradients. Skipped (said so) when not root, when namespaces
#      can't be made, or when the build has no libfabric;
#   d. a killed rank: 3 ranks with init_process_group(timeout=20 s); rank 2 SIGKILLs itself at
#      step 5; ranks 0 and 1 must raise RuntimeError (ddp_digits.py then exits 3) whose text names
#      rank 2, and the part must end within the timeout plus a margin (a hang check, not a speed
#      check).
#   e. mpirun (Open MPI) as the launcher, each rank's RANK/WORLD_SIZE set from OMPI_COMM_WORLD_*,
#      env:// through MASTER_ADDR/MASTER_PORT: parameters = part a's bit for bit.
# Exit 0 if every part that ran passed, 1 if one failed, 77 (automake's SKIP, reason printed) when
# configure found no torch ($top_builddir/python/podccl_torch has no _C*.so) or scikit-learn is
# missing. Environment: top_builddir (set by make check) or BUILD: the build tree.
# TORCH_DDP_BACKEND=gloo runs parts a to c with gloo in place of podccl (to develop this script
# without the backend; d is skipped then). TORCH_DDP_KEEP_LOGS=DIR copies the logs there.
set -u
here=$(cd "$(dirname "$0")" && pwd)
me=run_torch_ddp.sh
torch_be=${TORCH_DDP_BACKEND:-podccl}
torch_mods="torch.distributed, sklearn.datasets" torch_pkgs="python3-torch, python3-sklearn"
# shellcheck source=torch/setup.sh
. "$here/torch/setup.sh"
ddp=$here/torch/ddp_digits.py
be=$torch_be
floor=0.85

tmp=$(mktemp -d /tmp/run_torch_ddp.XXXXXX) || exit 1
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    [ -z "${TORCH_DDP_KEEP_LOGS:-}" ] ||
        { mkdir -p "$TORCH_DDP_KEEP_LOGS" && cp -r "$tmp"/. "$TORCH_DDP_KEEP_LOGS"/; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

verdicts=""
failed=0
t_start=$(date +%s)
# shellcheck source=report.sh
. "$here/report.sh"
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# same A.pt B.pt: 0 if the two saved parameter vectors are equal bit for bit; prints a summary.
same() {
    "$PY" - "$1" "$2" <<'EOF'
import sys, torch
a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
eq = a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))
print(f"  {sys.argv[1].split('/')[-1]} vs {sys.argv[2].split('/')[-1]}: {a.numel()} parameters, "
      + ("equal bit for bit" if eq else
         f"DIFFER: {int((a != b).sum()) if a.shape == b.shape else 'shape'} differ, "
         f"max |a-b| {float((a - b).abs().max()) if a.shape == b.shape else 0:g}"))
sys.exit(0 if eq else 1)
EOF
}
# run_ranks TAG N INIT [ARG...]: N ranks of ddp_digits.py on this host, each under timeout, output
# in $tmp/TAG.R.out; INIT env (env:// with MASTER_ADDR/PORT, RANK, WORLD_SIZE) or tcp (--init-method
# tcp://... --rank --world-size). Sets rcs (exit status of each rank).
run_ranks() {
    local tag=$1 n=$2 init=$3 r port pids=()
    shift 3
    port=$(free_port)
    for ((r = 0; r < n; r++)); do
        if [ "$init" = env ]; then
            echo "+ RANK=$r WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port ddp_digits.py $*"
            RANK=$r WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
                timeout -k 5 120 "$PY" "$ddp" "$@" >"$tmp/$tag.$r.out" 2>&1 &
        else
            echo "+ ddp_digits.py --init-method tcp://127.0.0.1:$port --rank $r --world-size $n $*"
            timeout -k 5 120 "$PY" "$ddp" --init-method "tcp://127.0.0.1:$port" --rank $r \
                --world-size "$n" "$@" >"$tmp/$tag.$r.out" 2>&1 &
        fi
        pids[r]=$!
    done
    rcs=()
    for ((r = 0; r < n; r++)); do
        wait "${pids[r]}" 2>/dev/null # (no "Killed" notice for part d's rank 2)
        rcs[r]=$?
    done
}
# check_train TAG N: why gets the reasons a training run failed (exit status, accuracy line,
# identical parameters, accuracy floor); acc gets the accuracy.
check_train() {
    local tag=$1 n=$2 r line
    for ((r = 0; r < n; r++)); do
        [ "${rcs[r]}" = 0 ] && continue
        why="$why $tag rank $r exit ${rcs[r]}"
        [ "${rcs[r]}" != 124 ] || why="$why (hung: killed after 120 s)"
        why="$why;"
    done
    line=$(grep -h 'ddp_digits: accuracy ' "$tmp/$tag".*.out | head -n 1)
    line=${line#*ddp_digits: }
    acc=$(echo "$line" | awk '{ print $2 }')
    if [ -z "$line" ]; then
        why="$why $tag: no accuracy line;"
        acc=none
    else
        echo "  $tag: $line"
        echo "$line" | grep -q ' identical_on_all_ranks yes' ||
            why="$why $tag: parameters differ between ranks;"
        awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a > f) }' ||
            why="$why $tag: accuracy $acc not above $floor;"
    fi
}

# like_part_a PART WHO TEXT: part PART ran the 2-rank training once (launcher log
# $tmp/PART.0.out, parameters $tmp/PART.pt, exit status in rcs[0], t0 its start): it must pass
# check_train and end with part a's parameters bit for bit. WHO names the launcher in a failure,
# TEXT describes the run in the verdict.
like_part_a() {
    local part=$1 who=$2 text=$3
    check_train "$part" 1
    if [ -f "$tmp/$part.pt" ] && [ -f "$tmp/a_${be}2.pt" ]; then
        same "$tmp/$part.pt" "$tmp/a_${be}2.pt" || why="$why $who's parameters differ from part a's;"
    else
        why="$why a parameter file is missing;"
    fi
    if [ -z "$why" ]; then
        verdict "$part" PASS "$text: accuracy $acc, parameters = part a's bit for bit ($(($(date +%s) - t0)) s)"
    else
        verdict "$part" FAIL "$why"
        show "$tmp/$part.0.out"
    fi
}

say "backend $be, $PY, build $build"

# ---------------------------------------------------------------------------------------------
# a: podccl vs gloo at 2 ranks (bit for bit), podccl at 3 ranks
t0=$(date +%s)
why=""
run_ranks "a_${be}2" 2 env --backend "$be" --save "$tmp/a_${be}2.pt"
check_train "a_${be}2" 2
acc_p2=$acc
run_ranks a_gloo2 2 env --backend gloo --save "$tmp/a_gloo2.pt"
check_train a_gloo2 2
if [ -f "$tmp/a_${be}2.pt" ] && [ -f "$tmp/a_gloo2.pt" ]; then
    same "$tmp/a_${be}2.pt" "$tmp/a_gloo2.pt" || why="$why 2-rank $be and gloo parameters differ;"
else
    why="$why a parameter file is missing;"
fi
run_ranks "a_${be}3" 3 tcp --backend "$be"
check_train "a_${be}3" 3
acc_p3=$acc
if [ -z "$why" ]; then
    verdict a PASS "2 ranks: $be = gloo bit for bit (accuracy $acc_p2); 3 ranks: identical, accuracy $acc_p3 ($(($(date +%s) - t0)) s)"
else
    verdict a FAIL "$why"
    show "$tmp"/a_*.out
fi

# ---------------------------------------------------------------------------------------------
# b: torchrun. Debian's torchrun (torch 1.13) on Python 3.11 does not start with its default
# --redirects 0 --tee 0: Std.from_str("0") finds no member, since 3.11's IntFlag iteration skips
# the zero (and multi-bit) members, and the launcher dies with "AttributeError: 'NoneType' object
# has no attribute 'get'" (so do -r 0 and -r 3; only single-bit values work). "--redirects 1
# --tee 1" starts it: each worker's stdout goes through a log file and on to the console with a
# "[default<R>]:" prefix; stderr is left alone. (A mapping naming no real local rank, e.g.
# "--redirects 9:1 --tee 9:1", also starts it and leaves both streams alone.)
t0=$(date +%s)
why=""
echo "+ $PY -m torch.distributed.run --standalone --nproc_per_node 2 --redirects 1 --tee 1 ddp_digits.py --backend $be"
timeout -k 5 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 \
    --redirects 1 --tee 1 "$ddp" --backend "$be" --save "$tmp/b.pt" >"$tmp/b.0.out" 2>&1
rcs=("$?")
like_part_a b torchrun "torchrun --standalone --nproc_per_node 2"

# ---------------------------------------------------------------------------------------------
# c: two namespace hosts, one rank each. In a subshell: tests/netns/lib.sh's traps and its skip
# (exit 77) then end this part only, and its cleanup runs when the subshell ends.
t0=$(date +%s)
part_c() {
    # shellcheck source=netns/lib.sh
    . "$here/netns/lib.sh"
    if [ -f "$build/config.h" ] && ! grep -q '^#define HAVE_OFI 1' "$build/config.h"; then
        netns_skip "this build has no libfabric transport (configure found no libfabric)"
    fi
    netns_up 2 || { echo "  could not set up the namespaces"; exit 1; }
    echo "  hosts: ${NETNS_HOST[*]} (${NETNS_ADDR[*]}) on $NETNS_SUBNET, bridge $NETNS_BRIDGE"
    local r pids=() rcs=() before=() tx rx tl why="" min=10000000
    for r in 0 1; do read -r "before[2 * r]" "before[2 * r + 1]" <<<"$(netns_bytes $r)"; done
    for r in 0 1; do
        netns_cmd $r
        echo "+ [${NETNS_HOST[r]}] RANK=$r WORLD_SIZE=2 MASTER_ADDR=${NETNS_ADDR[0]} MASTER_PORT=29500" \
            "PODCCL_NET=ofi PODCCL_SOCKET_IFNAME=eth0 ddp_digits.py --backend $be"
        timeout -k 5 120 "${NETNS_CMD[@]}" env RANK=$r WORLD_SIZE=2 MASTER_ADDR="${NETNS_ADDR[0]}" \
            MASTER_PORT=29500 PODCCL_NET=ofi PODCCL_SOCKET_IFNAME=eth0 GLOO_SOCKET_IFNAME=eth0 \
            "$PY" "$ddp" --backend "$be" --save "$tmp/c.pt" >"$tmp/c.$r.out" 2>&1 &
        pids[r]=$!
        netns_track "${pids[r]}"
    done
    for r in 0 1; do
        netns_wait "${pids[r]}"
        rcs[r]=$?
    done
    check_train c 2
    tl=$(grep -h 'ddp_digits: transport ' "$tmp"/c.*.out | head -n 1)
    if [ "$be" = podccl ] && [ -n "$tl" ]; then
        echo "  ${tl#ddp_digits: }"
        echo "$tl" | grep -qiw ofi || why="$why the backend's transport line does not name ofi;"
    fi
    for r in 0 1; do
        read -r tx rx <<<"$(netns_bytes $r)"
        tx=$((tx - ${before[2 * r]})) rx=$((rx - ${before[2 * r + 1]}))
        echo "  host $r (${NETNS_HOST[r]}, ${NETNS_ADDR[r]}): sent $tx B, received $rx B"
        [ "$tx" -ge $min ] && [ "$rx" -ge $min ] ||
            why="$why host $r's link carried < $min B (the gradients did not cross it);"
    done
    if [ -f "$tmp/c.pt" ] && [ -f "$tmp/a_${be}2.pt" ]; then
        same "$tmp/c.pt" "$tmp/a_${be}2.pt" || why="$why parameters differ from part a's;"
    else
        why="$why a parameter file is missing;"
    fi
    [ -z "$why" ] || { echo "  why:$why"; show "$tmp"/c.*.out; exit 1; }
    echo "  accuracy $acc"
    exit 0
}
(part_c) >"$tmp/c.log" 2>&1
rc=$?
cat "$tmp/c.log"
case $rc in
0)
    via=$be
    [ "$be" != podccl ] || via="podccl over ofi"
    acc=$(sed -n 's/^  accuracy //p' "$tmp/c.log")
    verdict c PASS "2 namespace hosts, 1 rank each, $via: accuracy $acc, parameters = part a's bit for bit ($(($(date +%s) - t0)) s)"
    ;;
77) verdict c SKIP "$(sed -n 's/.*SKIP: //p' "$tmp/c.log" | head -n 1)" ;;
*) verdict c FAIL "$(sed -n 's/^  why: *//p' "$tmp/c.log" | head -n 1)$([ $rc = 1 ] || echo " (exit $rc)")" ;;
esac

# ---------------------------------------------------------------------------------------------
# d: rank 2 of 3 SIGKILLs itself at step 5; ranks 0 and 1 must raise, naming rank 2.
to=20
margin=40 # generous: the part includes starting 3 interpreters with torch on a loaded machine
if [ "$be" != podccl ]; then
    verdict d SKIP "only with podccl (TORCH_DDP_BACKEND=$be)"
else
    t0=$(date +%s)
    why=""
    run_ranks d 3 env --backend "$be" --timeout $to --kill-rank 2 --kill-step 5
    el=$(($(date +%s) - t0))
    [ "${rcs[2]}" = 137 ] || why="$why rank 2 exit ${rcs[2]} (expected 137, SIGKILL);"
    for r in 0 1; do
        msg=$(grep -h "ddp_digits: rank $r caught RuntimeError" "$tmp/d.$r.out" | head -n 1)
        echo "  rank $r: exit ${rcs[r]}: ${msg:-(no RuntimeError caught)}"
        if [ "${rcs[r]}" = 124 ]; then
            why="$why rank $r hung (killed after 120 s);"
        elif [ "${rcs[r]}" != 3 ]; then
            why="$why rank $r exit ${rcs[r]} (expected 3: RuntimeError caught);"
        elif ! echo "${msg#*caught RuntimeError}" | grep -qiw 'rank 2'; then
            why="$why rank $r's error does not name rank 2;"
        fi
    done
    [ "$el" -lt $((to + margin)) ] ||
        why="$why took $el s (timeout $to s + margin $margin s): a hang;"
    if [ -z "$why" ]; then
        verdict d PASS "rank 2 killed at step 5: ranks 0 and 1 raised naming rank 2, exit 3, part took $el s (timeout $to s)"
    else
        verdict d FAIL "$why"
        show "$tmp"/d.*.out
    fi
fi

# ---------------------------------------------------------------------------------------------
# e: mpirun as the launcher, "with the env variables set": Open MPI starts the ranks, each takes
# RANK and WORLD_SIZE from OMPI_COMM_WORLD_RANK/SIZE, and env:// rendezvous goes through
# MASTER_ADDR/MASTER_PORT, as a user's job script does. Same training as part a at 2 ranks: the
# parameters must equal part a's bit for bit.
t0=$(date +%s)
mpirun=${MPIRUN:-mpirun}
if ! command -v "$mpirun" >/dev/null 2>&1 || ! "$mpirun" --version 2>/dev/null | grep -q 'Open MPI'; then
    verdict e SKIP "no Open MPI mpirun (MPIRUN=$mpirun)"
else
    why=""
    port=$(free_port)
    flags="--oversubscribe -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT=$port -x PYTHONPATH -x LD_LIBRARY_PATH"
    [ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
    echo "+ $mpirun -np 2 $flags sh -c 'RANK=\$OMPI_COMM_WORLD_RANK WORLD_SIZE=\$OMPI_COMM_WORLD_SIZE exec $PY ddp_digits.py'"
    # shellcheck disable=SC2086,SC2016
    timeout -k 5 120 "$mpirun" -np 2 $flags sh -c 'RANK=$OMPI_COMM_WORLD_RANK WORLD_SIZE=$OMPI_COMM_WORLD_SIZE exec "$0" "$@"' \
        "$PY" "$ddp" --backend "$be" --save "$tmp/e.pt" >"$tmp/e.0.out" 2>&1
    rcs=("$?")
    like_part_a e mpirun "mpirun -np 2, env:// from OMPI_COMM_WORLD_*"
fi

say "verdicts ($(($(date +%s) - t_start)) s):$verdicts"
if [ $failed = 0 ]; then
    say "all parts passed"
    exit 0
fi
say "FAILED"
exit 1
