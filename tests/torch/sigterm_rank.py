#!/usr/bin/python3
"""One rank of tests/test_sigterm --torch: torch.distributed on podccl, all_reduce in a loop.

Proves, with the driver (tests/test_sigterm.c, started by tests/run_sigterm_torch.sh), that a
PyTorch rank on podccl that gets SIGTERM in its loop, or while it exits after an error (a peer was
SIGKILLed, its all_reduce raised, and the interpreter is shutting down: torchrun sends SIGTERM to
the other workers when one fails), ends within 2 s and never hangs. Full run:
tests/run_sigterm_torch.sh -n 100.

Started by the driver with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (env:// rendezvous),
SIGTERM_TEST_FD (a pipe for progress lines), SIGTERM_TEST_ITERS, SIGTERM_TEST_TIMEOUT (the
init_process_group timeout, which becomes podccl's). Writes progress lines "TAG TIME [TEXT]"
(TIME: time.monotonic(), the driver's CLOCK_MONOTONIC): start, init, coll handler=<owner of the
SIGTERM handler>, last, err <code> <message>, exit, done.

Exit codes: 0 success; 3 an exception from torch.distributed (the error line names it; the
process then leaves through sys.exit, i.e. interpreter shutdown and static destructors, as a
training script that raises does); 5 wrong results. It installs no signal handler.
"""
import ctypes
import datetime
import os
import sys
import time

FD = int(os.environ["SIGTERM_TEST_FD"])


def say(tag, text=""):
    line = f"{tag} {time.monotonic():.6f} {' '.join(str(text).split())}".rstrip()[:1000]
    os.write(FD, (line + "\n").encode())


class DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def sigterm_owner():
    """Who handles SIGTERM at the C level: default, ignored, or the handler's library."""
    try:
        libc = ctypes.CDLL(None)
        sa = ctypes.create_string_buffer(512)  # struct sigaction: the handler comes first
        if libc.sigaction(15, None, sa) != 0:
            return "unknown"
        h = int.from_bytes(sa.raw[:8], sys.byteorder)
        if h == 0:
            return "default"
        if h == 1:
            return "ignored"
        info = DlInfo()
        if libc.dladdr(ctypes.c_void_p(h), ctypes.byref(info)) and info.dli_fname:
            return os.path.basename(info.dli_fname.decode())
        return hex(h)
    except (OSError, AttributeError):
        return "unknown"


def code_of(msg):
    low = msg.lower()
    if "remote process exited" in low:
        return 6  # podcclRemoteError
    if "timeout" in low or "timed out" in low:
        return 8  # podcclTimeout
    return 0


def main():
    say("start")
    import torch
    import torch.distributed as dist
    import podccl_torch  # noqa: F401  (registers the backend)

    torch.set_num_threads(1)
    rank, n = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    iters = int(os.environ.get("SIGTERM_TEST_ITERS", "60"))
    timeout = float(os.environ.get("SIGTERM_TEST_TIMEOUT", "30"))
    sizes = [1003, 64 * 1024, 256 * 1024]
    say("init")
    try:
        dist.init_process_group("podccl", timeout=datetime.timedelta(seconds=timeout))
        say("coll", "handler=" + sigterm_owner())
        for it in range(iters):
            say("iter", it)
            if it == iters - 1:
                say("last")
            t = torch.full((sizes[it % 3],), float(rank + 1 + it))
            dist.all_reduce(t)
            want = float(n * (n + 1) // 2 + n * it)
            if not bool((t == want).all()):
                say("wrong", f"iteration {it}: got {t[0].item()}, want {want}")
                say("exit")
                sys.exit(5)
    except Exception as e:  # noqa: BLE001  (any error from torch.distributed: reported)
        msg = f"{type(e).__name__}: {e}"
        say("err", f"{code_of(msg)} {msg}")
        print(f"sigterm_rank: rank {rank}: {msg}", flush=True)
        say("exit")
        sys.exit(3)  # interpreter shutdown, static destructors: where SIGTERM must still kill
    say("exit")
    dist.destroy_process_group()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
