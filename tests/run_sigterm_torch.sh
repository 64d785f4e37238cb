#!/bin/sh
# run_sigterm_torch.sh: SIGTERM at random moments to PyTorch ranks on podccl (tests/test_sigterm
# --torch with tests/torch/sigterm_rank.py): ranks under init_process_group("podccl") run
# all_reduce in a loop; a rank gets SIGTERM at a random moment of its loop, or a peer is SIGKILLed
# and a survivor, whose all_reduce raised, gets SIGTERM at a random moment while it exits
# (interpreter shutdown, static destructors), as torchrun does to the other workers when one
# fails. Every rank must end within 2 s of its SIGTERM, none may hang (a hang prints its stack
# and fails); the others must report the error naming the dead rank within 2 s of the job's end,
# and those still running then (libtorch's exit can take seconds) get SIGTERM, as torchrun does. Shared memory only, then with ofi chosen (one host per rank:
# PODCCL_HOSTID, PODCCL_NET=ofi). IPATH_NO_BACKTRACE and HFI_NO_BACKTRACE are unset for the ranks:
# the test proves they are not needed.
# make check runs 2 trials per configuration (np 2: one coll, one exit); the full run, from the
# source tree with the build in _build, is
#     BUILD=_build tests/run_sigterm_torch.sh -n 100
# (arguments go to test_sigterm: -s SEED, -v, --net shm|ofi, -p coll|exit|init, --np N,
# --psm-quiet for the control with IPATH_NO_BACKTRACE=1 HFI_NO_BACKTRACE=1).
# Exit 0 pass, 1 fail, 77 (automake's SKIP, reason printed) when configure found no torch or
# /usr/bin/python3 cannot import it. Environment: top_builddir (set by make check) or BUILD.
set -u
here=$(cd "$(dirname "$0")" && pwd)
me=run_sigterm_torch.sh
torch_be=podccl
torch_mods=torch.distributed torch_pkgs=python3-torch
# shellcheck source=torch/setup.sh
. "$here/torch/setup.sh"
unset IPATH_NO_BACKTRACE HFI_NO_BACKTRACE
drv=$build/tests/test_sigterm
[ -x "$drv" ] || { say "$drv is not built (make check builds it)"; exit 1; }
exec "$drv" --torch "$here/torch/sigterm_rank.py" --python "$PY" "$@"
