#!/usr/bin/python3
"""torch-bench.py: podccl against gloo through torch.distributed, in the same job.

Starts -np local ranks itself (or runs as one rank under torchrun / any launcher that sets RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT), opens a podccl group and a gloo group beside it, and for
all-reduce, all-gather, reduce-scatter and all-to-all sweeps the sizes, running podccl and then gloo
at every size. Prints nccl-tests columns for both side by side and the podccl/gloo busbw ratio, then
a latency table for small all-reduces. With --ccl-bench PATH, rank 0 then runs podccl's own
ccl-bench for the same sizes right after each collective's torch sweep (the other ranks wait in a
gloo barrier, which blocks without polling) and prints torch-path busbw / ccl-bench busbw.

Timing: warm-up iterations, a barrier on the group under test, the timed loop of blocking calls;
time = max over ranks of the mean time per iteration (as ccl-bench -a 3). Timed on zeros; then one
call on an exact pattern is checked element for element (#wrong, summed over ranks).
Size is the whole buffer (per-rank count x nranks for allgather, reducescatter and alltoall);
GB = 1e9 bytes; busbw = algbw x 2(n-1)/n for allreduce, x (n-1)/n for the others (nccl-tests).

Calls: allreduce dist.all_reduce (in place); allgather dist._all_gather_base (gloo in torch 1.13
has none: dist.all_gather into views of one output tensor, the same bytes); reducescatter
dist._reduce_scatter_base (gloo has no reduce-scatter at all in torch 1.13: emulated as an
all_reduce of the whole buffer plus a copy of the rank's own chunk, what a gloo user has to do; its
busbw is still computed with the reduce-scatter formula, i.e. as seen by the user); alltoall
dist.all_to_all_single with equal splits.

usage: /usr/bin/python3 bench/torch-bench.py [-np 2] [-b 8] [-e 64M] [-f 2] [-n 20] [-w 5]
           [-c allreduce,allgather,reducescatter,alltoall] [--backends podccl,gloo]
           [--lat-iters 1000] [--no-latency] [--ccl-bench PATH] [--build DIR]
  With the build tree: PYTHONPATH=$BUILD/python LD_LIBRARY_PATH=$BUILD/.libs, or --build $BUILD.
"""

import argparse
import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings

COLLS = ["allreduce", "allgather", "reducescatter", "alltoall"]
WORKER_ENV = "TORCH_BENCH_WORKER"


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)B?", s.strip(), re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError("bad size %r (e.g. 8, 1K, 64M)" % s)
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="torch-bench.py",
        description="podccl vs gloo through torch.distributed (nccl-tests columns).",
        epilog="Sizes take K/M/G suffixes (1024-based). Run with /usr/bin/python3 (Debian's torch). "
        "Under torchrun (RANK/WORLD_SIZE set) -np is ignored and each process is one rank.",
    )
    p.add_argument("-np", type=int, default=2, help="local ranks to start (default 2)")
    p.add_argument("-b", type=parse_size, default=8, help="smallest size in bytes (default 8)")
    p.add_argument("-e", type=parse_size, default=64 << 20, help="largest size (default 64M)")
    p.add_argument("-f", type=float, default=2.0, help="size factor per step, > 1 (default 2)")
    p.add_argument("-n", type=int, default=20, help="timed iterations per size (default 20)")
    p.add_argument("-w", type=int, default=5, help="warm-up iterations per size (default 5)")
    p.add_argument("-c", "--colls", default=",".join(COLLS),
                   help="comma list of collectives (default all four: %s)" % ",".join(COLLS))
    p.add_argument("--check", type=int, default=1, choices=[0, 1],
                   help="check one call per size element for element (default 1)")
    p.add_argument("--backends", default="podccl,gloo",
                   help="two backends A,B compared as A/B (default podccl,gloo; gloo,gloo to try "
                   "the script without podccl)")
    p.add_argument("--lat-iters", type=int, default=1000,
                   help="iterations per size of the small all-reduce latency table (default 1000)")
    p.add_argument("--lat-max", type=parse_size, default=1024,
                   help="largest size of the latency table (default 1K, from 8 B)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency table")
    p.add_argument("--ccl-bench", metavar="PATH",
                   help="also run podccl's ccl-bench (e.g. $BUILD/bench/ccl-bench) for the same "
                   "sizes and print torch-path busbw / ccl-bench busbw")
    p.add_argument("--json", metavar="PREFIX",
                   help="also write each backend's rows as PREFIX-BACKEND-COLL.json, in the format "
                   "of ccl-bench --json (bench/schema/podccl-bench.schema.json)")
    p.add_argument("--build", metavar="DIR",
                   help="podccl build tree: adds DIR/python to the module path and DIR/.libs to "
                   "LD_LIBRARY_PATH of the ranks")
    p.add_argument("--timeout", type=int, default=300, help="process group timeout, s (default 300)")
    p.add_argument("--grace", type=int, default=30,
                   help="after one rank fails, kill the others after this many s (default 30)")
    a = p.parse_args(argv)
    a.colls = [c for c in a.colls.split(",") if c]
    for c in a.colls:
        if c not in COLLS:
            p.error("unknown collective %r (choose from %s)" % (c, ", ".join(COLLS)))
    a.backends = a.backends.split(",")
    if len(a.backends) != 2:
        p.error("--backends takes exactly two names, A,B")
    if a.f <= 1.0 or a.b > a.e or a.n < 1 or a.w < 0 or a.np < 1:
        p.error("need -f > 1, -b <= -e, -n >= 1, -w >= 0, -np >= 1")
    return a


# ---- launcher ----------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, argv, script=None):
    """Starts args.np copies of this script (or of `script`) as ranks 0..np-1 and waits for all of
    them. If one fails, the others are killed after args.grace seconds (a dead peer should make
    them fail by themselves first). Needs args.np, args.build, args.grace."""
    env = dict(os.environ)
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(args.np),
               LOCAL_WORLD_SIZE=str(args.np), **{WORKER_ENV: "1"})
    if args.build:
        b = os.path.abspath(args.build)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [b + "/python", env.get("PYTHONPATH")]))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [b + "/.libs",
                                                              env.get("LD_LIBRARY_PATH")]))
    procs = []
    for r in range(args.np):
        e = dict(env, RANK=str(r), LOCAL_RANK=str(r))
        procs.append(subprocess.Popen([sys.executable, script or os.path.abspath(__file__)] + argv,
                                      env=e))
    rc, failed_at = 0, None
    try:
        while any(p.poll() is None for p in procs):
            for r, p in enumerate(procs):
                if p.returncode not in (None, 0) and rc == 0:
                    rc, failed_at = p.returncode, time.time()
                    print("torch-bench: rank %d exited with %d" % (r, p.returncode),
                          file=sys.stderr)
            if failed_at and time.time() - failed_at > args.grace:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.05)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        return 130
    for r, p in enumerate(procs):
        if p.returncode != 0 and rc == 0:
            rc = p.returncode
            print("torch-bench: rank %d exited with %d" % (r, p.returncode), file=sys.stderr)
    return 0 if rc == 0 else (rc if rc > 0 else 1)


# ---- one rank ----------------------------------------------------------------------------------

def bus_factor(coll, n):
    return 2.0 * (n - 1) / n if coll == "allreduce" else (n - 1) / n


def layout(coll, raw, n):
    """(count column, send elements, recv elements, size column in bytes) as ccl-bench's layout():
    float32 elements; count is per rank (per peer for alltoall)."""
    elems = raw // 4
    if coll == "allreduce":
        return elems, elems, elems, elems * 4
    cnt = elems // n
    if coll == "allgather":
        return cnt, cnt, cnt * n, cnt * n * 4
    if coll == "reducescatter":
        return cnt, cnt * n, cnt, cnt * n * 4
    return cnt, cnt * n, cnt * n, cnt * n * 4  # alltoall


def sizes(lo, hi, factor, coll, n):
    out, raw = [], lo
    while raw <= hi:
        row = layout(coll, raw, n)
        if row[3] > 0 and (not out or out[-1][3] != row[3]):
            out.append(row)
        nxt = int(raw * factor)
        raw = nxt if nxt > raw else raw + 1
    return out


def open_groups(dist, backends, timeout_s, prog):
    """The job's process groups, from the environment (RANK, WORLD_SIZE, MASTER_*): a gloo
    default group that only carries the bookkeeping (max of times, sums of #wrong), then one group
    per backend compared. Returns (rank, nranks, groups, names); names are the backends, made
    unique ("gloo#1", "gloo#2") when both are the same. Shared with torch-ddp-bench.py."""
    if "podccl" in backends:
        try:
            import podccl_torch  # noqa: F401  registers backend "podccl"
        except ImportError as e:
            sys.exit("%s: cannot import podccl_torch (%s): run with PYTHONPATH=$BUILD/python "
                     "LD_LIBRARY_PATH=$BUILD/.libs, or --build $BUILD" % (prog, e))
    rank, n = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    to = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=n, timeout=to)
    groups = [dist.new_group(backend=b, timeout=to) for b in backends]
    names = list(backends)
    if names[0] == names[1]:
        names = [names[0] + "#1", names[1] + "#2"]
    return rank, n, groups, names


class Rank:
    def __init__(self, args):
        import torch
        import torch.distributed as dist
        self.torch, self.dist, self.args = torch, dist, args
        warnings.filterwarnings("ignore", message=".*is a private function and will be deprecated.*")
        torch.set_num_threads(1)
        self.rank, self.n, self.groups, self.names = open_groups(dist, args.backends,
                                                                 args.timeout, "torch-bench")
        hosts = [None] * self.n
        dist.all_gather_object(hosts, socket.gethostname())
        self.nhosts = len(set(hosts))

    def say(self, *a, **k):
        if self.rank == 0:
            print(*a, **k)
            sys.stdout.flush()

    def max_over_ranks(self, v):
        t = self.torch.tensor([v], dtype=self.torch.float64)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return t.item()

    def sum_over_ranks(self, v):
        t = self.torch.tensor([v], dtype=self.torch.int64)
        self.dist.all_reduce(t)
        return int(t.item())

    # -- the calls --
    def make_call(self, coll, backend, group, count, send, recv):
        dist, n, r = self.dist, self.n, self.rank
        if coll == "allreduce":
            return lambda: dist.all_reduce(recv, group=group)
        if coll == "allgather":
            if backend == "gloo":
                views = list(recv.chunk(n))
                return lambda: dist.all_gather(views, send, group=group)
            return lambda: dist._all_gather_base(recv, send, group=group)
        if coll == "reducescatter":
            if backend == "gloo":
                def rs():
                    dist.all_reduce(send, group=group)
                    recv.copy_(send[r * count:(r + 1) * count])
                return rs
            return lambda: dist._reduce_scatter_base(recv, send, group=group)
        return lambda: dist.all_to_all_single(recv, send, group=group)

    def fill(self, coll, count, send, recv):
        """Exact small integers (exact in float32); returns the expected result of recv."""
        torch, n, r = self.torch, self.n, self.rank
        recv.fill_(-1.0)
        if coll == "allreduce":
            i = torch.arange(count, dtype=torch.int64)
            recv.copy_((r + 1) + (i % 7))
            return (n * (n + 1) // 2 + n * (i % 7)).float()
        if coll == "allgather":
            send.copy_(r * 1000 + (torch.arange(count) % 13))
            return torch.cat([q * 1000 + (torch.arange(count) % 13) for q in range(n)]).float()
        if coll == "reducescatter":
            i = torch.arange(count * n)
            send.copy_((r + 1) + (i % 11))
            mine = i[r * count:(r + 1) * count]
            return (n * (n + 1) // 2 + n * (mine % 11)).float()
        # alltoall: chunk j of rank r goes to rank j; rank r receives chunk r of every rank q.
        i = torch.arange(count)
        send.copy_(torch.cat([r * 100 + j * 10000 + (i % 5) for j in range(n)]))
        return torch.cat([q * 100 + r * 10000 + (i % 5) for q in range(n)]).float()

    def measure(self, coll, bi, count, nsend, nrecv, iters, warmup, check):
        torch, dist = self.torch, self.dist
        backend, group = self.args.backends[bi], self.groups[bi]
        send = torch.zeros(nsend, dtype=torch.float32)
        recv = torch.zeros(nrecv, dtype=torch.float32) if coll != "allreduce" else send
        call = self.make_call(coll, backend, group, count, send, recv)
        for _ in range(warmup):
            call()
        send.zero_()
        recv.zero_()
        dist.barrier(group=group)
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        us = (time.perf_counter() - t0) * 1e6 / iters
        us = self.max_over_ranks(us)
        wrong = None
        if check:
            want = self.fill(coll, count, send, recv)
            call()
            wrong = self.sum_over_ranks(int((recv != want).sum().item()))
        return us, wrong

    # -- tables --
    def sweep(self, coll):
        a = self.args
        n = self.n
        A, B = self.names
        f = bus_factor(coll, n)
        self.say("#\n# %s, float32, sum where it reduces, nranks %d; A = %s, B = %s; "
                 "ratio = busbw A / busbw B" % (coll, n, A, B))
        if coll in ("allgather", "reducescatter") and "gloo" in a.backends:
            self.say("# gloo: %s" % ("dist.all_gather into views of one tensor (no _allgather_base "
                                     "in gloo)" if coll == "allgather" else
                                     "emulated: all_reduce of the whole buffer + own chunk (no "
                                     "reduce_scatter in gloo)"))
        self.say("# %33s  %40s  %32s" % ("", "%s" % A, "%s" % B))
        self.say("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %7s" %
                 ("size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong",
                  "time", "algbw", "busbw", "#wrong", "ratio"))
        self.say("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %7s" %
                 ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)",
                  "(GB/s)", "(GB/s)", "", "A/B"))
        res, wrong_total, bus = [], 0, [[], []]
        records = [[], []]
        for count, nsend, nrecv, nbytes in sizes(a.b, a.e, a.f, coll, n):
            cols = []
            for bi in (0, 1):
                us, wrong = self.measure(coll, bi, count, nsend, nrecv, a.n, a.w, a.check)
                algbw = nbytes / us / 1e3
                cols.append((us, algbw, algbw * f, wrong))
                bus[bi].append(algbw * f)
                wrong_total += wrong or 0
            res.append((nbytes, cols[0][2], cols[1][2]))
            redop = "sum" if coll in ("allreduce", "reducescatter") else "none"
            for bi in (0, 1):
                us, algbw, busbw, wrong = cols[bi]
                records[bi].append({
                    "collective": coll, "size_bytes": nbytes, "count": count, "dtype": "float",
                    "op": redop, "root": -1, "in_place": coll == "allreduce", "time_us": us,
                    "algbw_gbps": algbw, "busbw_gbps": busbw,
                    "wrong": -1 if wrong is None else wrong, "algorithm": ""})
            line = "  %10d  %12d  %8s  %6s  %6d" % (nbytes, count, "float", redop, -1)
            for us, algbw, busbw, wrong in cols:
                ts = ("%7.0f" if us >= 10000 else "%7.1f" if us >= 100 else "%7.2f") % us
                line += "  %7s  %6.2f  %6.2f  %6s" % (ts, algbw, busbw,
                                                     "N/A" if wrong is None else wrong)
            ratio = cols[0][2] / cols[1][2] if cols[1][2] > 0 else float("inf")
            self.say(line + "  %7.2f" % ratio)
        self.say("# Out of bounds values : %d %s" % (wrong_total, "FAILED" if wrong_total else "OK"))
        avg = [sum(x) / len(x) if x else 0.0 for x in bus]
        self.say("# Avg bus bandwidth    : %s %.4g  %s %.4g" % (A, avg[0], B, avg[1]))
        if a.json and self.rank == 0:
            for bi in (0, 1):
                self.write_json(coll, bi, records[bi])
        return res, wrong_total

    def write_json(self, coll, bi, records):
        """PREFIX-BACKEND-COLL.json in ccl-bench's --json format (podccl-bench/1)."""
        import datetime as dt
        import json
        import platform
        a, torch = self.args, self.torch
        backend = a.backends[bi]
        version = "torch " + torch.__version__
        transports = ""
        if backend == "podccl":
            import podccl_torch
            v = podccl_torch.podccl_version
            version = "%d.%d.%d (%s)" % (v // 10000, v // 100 % 100, v % 100, version)
            info = getattr(self.groups[bi], "transport_info", None)
            transports = info() if info else ""
        cpu = ""
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
        except OSError:
            pass
        commit = os.environ.get("PODCCL_BENCH_GIT_COMMIT", "")
        if not commit:
            try:
                commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                         "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, timeout=5).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                commit = ""
        doc = {"schema": "podccl-bench/1", "context": {
            "tool": "torch-bench", "library": "%s (torch.distributed)" % backend,
            "library_version": version, "git_commit": commit or "unknown",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": platform.node(), "cpu": cpu, "ncpus": os.cpu_count() or 1, "nranks": self.n,
            "nhosts": self.nhosts, "transports": transports, "topology": "", "collective": coll,
            "dtype": "float", "op": "sum" if coll in ("allreduce", "reducescatter") else "none",
            "root": -1, "iterations": a.n, "warmup": a.w, "label": "%s (torch)" % self.names[bi],
            "ceiling_gbps": None}, "records": records}
        path = "%s-%s-%s.json" % (a.json, self.names[bi].replace("#", ""), coll)
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        self.say("# wrote %s" % path)

    def latency(self):
        a = self.args
        A, B = self.names
        iters, warm = a.lat_iters, max(a.lat_iters // 10, 10)
        self.say("#\n# small all-reduce latency, float32 sum, nranks %d, %d iterations (%d warm-up); "
                 "time = max over ranks of the mean" % (self.n, iters, warm))
        self.say("# %10s  %12s  %10s  %10s  %9s" % ("size", "count", A, B, "B/A"))
        self.say("# %10s  %12s  %10s  %10s  %9s" % ("(B)", "(elements)", "(us)", "(us)", ""))
        wrong_total = 0
        for count, nsend, nrecv, nbytes in sizes(8, a.lat_max, 2.0, "allreduce", self.n):
            t = []
            for bi in (0, 1):
                us, wrong = self.measure("allreduce", bi, count, nsend, nrecv, iters, warm,
                                         a.check)
                t.append(us)
                wrong_total += wrong or 0
            self.say("  %10d  %12d  %10.2f  %10.2f  %9.2f" % (nbytes, count, t[0], t[1],
                                                               t[1] / t[0]))
        if wrong_total:
            self.say("# Out of bounds values : %d FAILED" % wrong_total)
        return wrong_total

    def run(self):
        a = self.args
        torch = self.torch
        self.say("# torch-bench: torch %s, nranks %d, pid %d (rank 0), backends %s vs %s" %
                 (torch.__version__, self.n, os.getpid(), self.names[0], self.names[1]))
        self.say("# sizes: %d to %d bytes, factor %g; iterations: %d  warm-up: %d  check: %d  "
                 "time: max over ranks of the mean; torch threads per rank: %d" %
                 (a.b, a.e, a.f, a.n, a.w, a.check, torch.get_num_threads()))
        wrong = 0
        for coll in a.colls:
            res, w = self.sweep(coll)
            wrong += w
            if a.ccl_bench:
                # Right after the torch sweep, so that both see the same load on a shared
                # machine; the other ranks wait in a (blocking, not polling) gloo barrier.
                if self.rank == 0:
                    wrong += compare_ccl_bench(a, self.n, coll, res, self.names[0])
                self.dist.barrier()
        if not a.no_latency:
            wrong += self.latency()
        self.dist.barrier()
        for g in self.groups:
            self.dist.destroy_process_group(g)
        self.dist.destroy_process_group()
        return 1 if wrong else 0


# ---- ccl-bench comparison (rank 0, after each collective's torch sweep) --------------------------

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
               "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID", "PODCCL_RANK", "PODCCL_NRANKS",
               "PODCCL_COMM_ID", WORKER_ENV)


def run_ccl_bench(a, n, coll):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    cmd = [a.ccl_bench, coll, "-b", str(a.b), "-e", str(a.e), "-f", "%g" % a.f, "-n", str(a.n),
           "-w", str(a.w), "-np", str(n), "-d", "float", "-o", "sum"]
    print("# running: %s" % " ".join(cmd))
    sys.stdout.flush()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if not f or f[0].startswith("#") or not f[0].isdigit() or len(f) < 13:
            continue
        num = lambda s: float(s) if s != "N/A" else None  # noqa: E731
        rows[int(f[0])] = (num(f[7]), num(f[11]), f[8], f[12])
    if p.returncode != 0:
        print("# ccl-bench %s exited with %d: %s" % (coll, p.returncode, p.stderr.strip()[-500:]))
    return rows, p.returncode


def compare_ccl_bench(a, n, coll, res, label):
    bad = 0
    rows, rc = run_ccl_bench(a, n, coll)
    bad += rc != 0
    inplace = coll == "allreduce"  # torch's all_reduce works in place
    print("#\n# %s: torch-path %s busbw vs ccl-bench busbw (ratio against ccl-bench %s, "
          "as the torch call is)" % (coll, label, "in-place" if inplace else "out-of-place"))
    print("# %10s  %10s  %10s  %10s  %7s" % ("size", "torch", "ccl oop", "ccl ip", "ratio"))
    print("# %10s  %10s  %10s  %10s  %7s" % ("(B)", "(GB/s)", "(GB/s)", "(GB/s)", ""))
    for nbytes, busA, _ in res:
        oop, ip = rows.get(nbytes, (None, None, None, None))[:2]
        ref = ip if inplace else oop
        fmt = lambda v: "%10.2f" % v if v is not None else "%10s" % "N/A"  # noqa: E731
        ratio = "%7.2f" % (busA / ref) if ref else "%7s" % "N/A"
        print("  %10d  %10.2f  %s  %s  %s" % (nbytes, busA, fmt(oop), fmt(ip), ratio))
    sys.stdout.flush()
    return bad


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if os.environ.get(WORKER_ENV) or ("RANK" in os.environ and "WORLD_SIZE" in os.environ):
        if args.build:
            sys.path.insert(0, os.path.abspath(args.build) + "/python")
        return Rank(args).run()
    return launch(args, argv)


if __name__ == "__main__":
    sys.exit(main())
