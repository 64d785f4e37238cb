#!/bin/sh
# run_torch.sh: the collective correctness suite of the podccl torch backend (podccl_torch):
# tests/torch/test_collectives.py at world sizes 2, 3 and 4. Each run starts one process per rank
# (file:// rendezvous); the default group is podccl and a gloo group beside it runs the same
# collectives on the same inputs; results must match gloo's (and a reference computed in Python)
# bit for bit: every collective, op and dtype of the contract, sizes 0 .. 4 Mi elements, every
# root, uneven all-to-all splits, send/recv, async work and futures, in-place forms, subgroups,
# and the error cases (which must leave the communicator working).
# Each run is bounded by `timeout` (a hang fails the run, it never blocks make check).
# Exit 0 if every run passed, 1 if one failed, 77 (automake's SKIP, reason printed) when configure
# found no torch ($top_builddir/python/podccl_torch has no _C*.so) or /usr/bin/python3 has no torch.
# Environment: top_builddir (set by make check) or BUILD: the build tree. TORCH_COLL_BACKEND=gloo
# runs the suite gloo against gloo (to develop it without the backend); TORCH_COLL_SIZES overrides
# the world sizes ("2 3 4"); TORCH_COLL_TIMEOUT the seconds allowed per run (180).
set -u
here=$(cd "$(dirname "$0")" && pwd)
me=run_torch.sh
torch_be=${TORCH_COLL_BACKEND:-podccl}
torch_mods=torch.distributed torch_pkgs=python3-torch
# shellcheck source=torch/setup.sh
. "$here/torch/setup.sh"
suite=$here/torch/test_collectives.py
be=$torch_be
limit=${TORCH_COLL_TIMEOUT:-180}
[ -f "$suite" ] || { say "$suite not found"; exit 1; }

failed=""
for n in ${TORCH_COLL_SIZES:-2 3 4}; do
    say "+ test_collectives.py --backend $be --world-size $n"
    # The suite kills its own ranks 10 s before timeout does (a clearer verdict); timeout (with
    # -k for a launcher that ignores TERM) is the backstop.
    timeout -k 10 "$limit" "$PY" "$suite" --backend "$be" --world-size "$n" \
        --timeout $((limit - 10))
    rc=$?
    if [ $rc -ne 0 ]; then
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && say "world size $n: timed out after $limit s"
        failed="$failed $n"
    fi
done
if [ -n "$failed" ]; then
    say "FAILED at world sizes:$failed"
    exit 1
fi
say "all world sizes passed"
exit 0
