# setup.sh: the common start of the PyTorch backend's test runners (run_torch.sh,
# run_torch_ddp.sh). Sourced (POSIX sh) with me (the runner's name), here (its folder),
# torch_be (the backend under test: podccl or gloo), torch_mods (the Python modules it imports)
# and torch_pkgs (their Debian packages) set. Defines say and skip; sets build (the build tree:
# top_builddir, else BUILD, else the source tree) and PY; skips (exit 77, reason printed) when
# configure found no torch (no podccl_torch/_C*.so in the build tree) or PY lacks the modules;
# exports the build tree's package and library paths, one thread per rank, and drops a caller's
# rank and rendezvous variables (each runner sets its own).
say() { echo "$me: $*"; }
skip() { say "SKIP: $*"; exit 77; }

build=${top_builddir:-${BUILD:-}}
[ -n "$build" ] || build=$here/..
build=$(cd "$build" && pwd) || exit 1
PY=/usr/bin/python3 # Debian's python, the one with torch (a python3 earlier on PATH may lack it)

[ -x "$PY" ] || skip "$PY not found"
if [ "$torch_be" = podccl ]; then
    ls "$build"/python/podccl_torch/_C*.so >/dev/null 2>&1 ||
        skip "torch not found by configure (no $build/python/podccl_torch/_C*.so)"
fi
"$PY" -c "import $torch_mods" 2>/dev/null || skip "$PY cannot import $torch_mods ($torch_pkgs)"
export PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=1
unset RANK WORLD_SIZE LOCAL_RANK MASTER_ADDR MASTER_PORT PODCCL_RANK PODCCL_NRANKS PODCCL_COMM_ID
