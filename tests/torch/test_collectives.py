#!/usr/bin/python3
"""Correctness suite for the podccl torch.distributed backend, checked against gloo in the same job.

Launcher mode (default): `test_collectives.py --world-size N [--backend podccl]` starts N worker
processes of this script (one per rank, rendezvous through a file:// store in a fresh temporary
folder), waits for them under a deadline (a hang is a failure: every worker is killed) and exits
non-zero when any rank reports a mismatch, raises, or does not finish.

Worker mode (`--rank R`, set by the launcher): the default group uses --backend (podccl; `gloo`
runs the suite gloo against gloo, for developing the suite itself), and a gloo group is created
beside it with dist.new_group(backend="gloo"). Every collective runs on both groups with the same
inputs and the results are compared bit for bit (raw bytes). Each rank can also generate every other
rank's inputs (they are seeded by case and rank), so every result is also compared with a value
computed here in Python; that is the only reference where gloo cannot do the operation (bf16
reductions, AVG, the extra dtypes), and otherwise checks that the test data itself is sound.

Inputs of reductions are integer-valued and small enough that every SUM/PRODUCT is exact in every
dtype, so the reduction order cannot change the bits. AVG: gloo has no AVG, so the reference is gloo
SUM divided by the group size (true division for floats, truncation toward zero for integers, like
NCCL). Float AVG is compared bit for bit when the group size is a power of two (the division is then
exact) and within two units of the dtype's epsilon otherwise (x/3 and x*(1/3) may round apart).

Each rank prints one summary line: checks run, failures; and the first mismatches in full.
"""
import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zlib

MAX_REPORTED = int(os.environ.get("PODCCL_TORCH_MAX_REPORTED", "8"))
BIG = 4 * 1024 * 1024
SIZES = [0, 1, 7, 1023, 64 * 1024 + 3]


def say(line):
    """One write per line, so that the ranks' lines do not interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="podccl", help="backend under test (default podccl)")
    p.add_argument("--world-size", type=int, default=2)
    p.add_argument("--rank", type=int, default=None, help="worker mode (set by the launcher)")
    p.add_argument("--init-method", default=None, help="worker mode: init_method (file:// or tcp://)")
    p.add_argument("--tmpdir", default=None, help="worker mode: scratch folder shared by the ranks")
    p.add_argument("--timeout", type=float, default=170.0,
                   help="launcher: seconds before all workers are killed and the run fails")
    p.add_argument("--pg-timeout", type=float, default=30.0,
                   help="timeout given to init_process_group (seconds)")
    p.add_argument("--quick", action="store_true", help="skip the 4 Mi element cases")
    return p.parse_args()


# ----------------------------------------------------------------------------------------------
# Launcher
# ----------------------------------------------------------------------------------------------

def launch(args):
    tmp = tempfile.mkdtemp(prefix="podccl_torch_coll_")
    init = "file://" + os.path.join(tmp, "store")
    t0 = time.time()
    procs = []
    for r in range(args.world_size):
        cmd = [sys.executable, os.path.abspath(__file__), "--rank", str(r),
               "--world-size", str(args.world_size), "--backend", args.backend,
               "--init-method", init, "--tmpdir", tmp, "--pg-timeout", str(args.pg_timeout)]
        if args.quick:
            cmd.append("--quick")
        procs.append(subprocess.Popen(cmd))

    def on_term(signum, frame):  # killed from outside (e.g. by timeout): take the ranks along
        for p in procs:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    deadline = t0 + args.timeout
    first_bad = None
    status = "ok"
    while True:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            break
        now = time.time()
        bad = [c for c in codes if c not in (None, 0)]
        if bad and first_bad is None:
            first_bad = now
        # One rank failed: give the others a little time to report, then stop them (they may
        # be blocked in a collective that the failed rank will never join).
        if first_bad is not None and now - first_bad > 20:
            status = "killed after another rank failed"
            break
        if now > deadline:
            status = "TIMEOUT after %.0f s (hang?)" % args.timeout
            break
        time.sleep(0.05)
    for p in procs:
        if p.poll() is None:
            p.kill()
    codes = [p.wait() for p in procs]
    shutil.rmtree(tmp, ignore_errors=True)
    dt = time.time() - t0
    ok = status == "ok" and all(c == 0 for c in codes)
    print("test_collectives: backend=%s world_size=%d: %s in %.1f s (exit codes %s%s)"
          % (args.backend, args.world_size, "PASS" if ok else "FAIL", dt, codes,
             "" if status == "ok" else "; " + status), flush=True)
    return 0 if ok else 1


# ----------------------------------------------------------------------------------------------
# Worker
# ----------------------------------------------------------------------------------------------

def worker(args):
    warnings.filterwarnings("ignore")
    import torch
    import torch.distributed as dist
    if args.backend == "podccl":
        import importlib
        import podccl_torch  # registers the backend
        importlib.reload(podccl_torch)  # importing again must be harmless (register idempotent)
    torch.set_num_threads(1)
    dist.init_process_group(args.backend, init_method=args.init_method, rank=args.rank,
                            world_size=args.world_size,
                            timeout=datetime.timedelta(seconds=args.pg_timeout))
    assert dist.get_backend() == args.backend, dist.get_backend()
    gloo = dist.new_group(backend="gloo")
    suite = Suite(args, torch, dist, dist.group.WORLD, gloo)
    t0 = time.time()
    try:
        suite.run_all()
    except Exception:
        suite.fail("suite", None, None, "uncaught exception:\n" + traceback.format_exc())
    dt = time.time() - t0
    suite.summary(dt)
    # No destroy_process_group before exit: a failed rank must not wait on the others.
    sys.stdout.flush()
    os._exit(1 if suite.failures else 0)


class Suite:
    def __init__(self, args, torch, dist, pg, gloo):
        self.args = args
        self.torch = torch
        self.dist = dist
        self.pg = pg
        self.gloo = gloo
        self.rank = args.rank
        self.ws = args.world_size
        self.checks = 0
        self.failures = 0
        self.current = ""
        R = dist.ReduceOp
        self.OPS = [("SUM", R.SUM), ("PRODUCT", R.PRODUCT), ("MIN", R.MIN), ("MAX", R.MAX),
                    ("AVG", R.AVG)]
        self.OPD = dict(self.OPS)
        t = torch
        self.DTYPES = [t.float32, t.float64, t.float16, t.bfloat16, t.int8, t.uint8, t.int32,
                       t.int64]
        # gloo in torch 1.13 has no bfloat16 at all ("Invalid scalar type"), and no int16, bool or
        # complex for the collectives used here.
        self.GLOO_DTYPES = {t.float32, t.float64, t.float16, t.int8, t.uint8, t.int32, t.int64}
        self.pow2 = (self.ws & (self.ws - 1)) == 0

    # ---------------------------------------------------------------- bookkeeping

    def fail(self, coll, dtype, size, msg):
        self.failures += 1
        if self.failures <= MAX_REPORTED:
            say("MISMATCH rank %d/%d: %s dtype=%s size=%s: %s"
                % (self.rank, self.ws, coll, dtype, size, msg))

    def summary(self, dt):
        say("rank %d/%d backend=%s: %d checks, %d failures (%.1f s)"
            % (self.rank, self.ws, self.args.backend, self.checks, self.failures, dt))

    def compare(self, coll, dtype, size, got, exp, what, tol=False):
        """Compares tensors got and exp (or lists of them) bit for bit (tol: within 2 eps)."""
        torch = self.torch
        if not isinstance(got, (list, tuple)):
            got, exp = [got], [exp]
        self.checks += 1
        if len(got) != len(exp):
            self.fail(coll, dtype, size, "%s: %d tensors, expected %d" % (what, len(got), len(exp)))
            return False
        for i, (g, e) in enumerate(zip(got, exp)):
            where = what + ("" if len(got) == 1 else " [tensor %d]" % i)
            if g.dtype != e.dtype or g.shape != e.shape:
                self.fail(coll, dtype, size, "%s: got %s%s, expected %s%s"
                          % (where, g.dtype, tuple(g.shape), e.dtype, tuple(e.shape)))
                return False
            if g.numel() == 0:
                continue
            if tol and g.is_floating_point():
                eps = torch.finfo(g.dtype).eps
                gd, ed = g.double(), e.double()
                bad = ~torch.isclose(gd, ed, rtol=2 * eps, atol=0.0)
            else:
                gb = g.contiguous().view(-1).view(torch.uint8).view(g.numel(), -1)
                eb = e.contiguous().view(-1).view(torch.uint8).view(e.numel(), -1)
                bad = (gb != eb).any(dim=1)
            if bool(bad.any()):
                idx = bad.nonzero()[0].item()
                nbad = int(bad.sum().item())
                self.fail(coll, dtype, size, "%s: %d of %d elements differ, first at [%d]: got %s, "
                          "expected %s" % (where, nbad, g.numel(), idx,
                                           g.view(-1)[idx].item(), e.view(-1)[idx].item()))
                return False
        return True

    def dev_unsupported(self, coll, dtype, n):
        """--backend gloo (developing the suite against gloo): skip what gloo cannot do."""
        if self.args.backend != "gloo":
            return False
        t = self.torch
        if dtype in (t.bfloat16, t.bool, t.int16, t.complex64, t.complex128):
            return True
        if n == 0 and "gather" in coll:
            return True
        return any(k in coll for k in ("AVG", "error case", "_all_gather_base", "into_tensor",
                                       "reduce_scatter", "all_to_all(", "get_future"))

    def guarded(self, coll, dtype, size, fn):
        """Runs fn(); an exception counts as a failure (the other ranks raise the same one)."""
        if self.dev_unsupported(coll, dtype, size):
            return
        try:
            fn()
        except Exception as ex:
            self.checks += 1
            self.fail(coll, dtype, size, "raised %s: %s"
                      % (type(ex).__name__, str(ex).strip().splitlines()[0][:300]
                         if str(ex).strip() else ""))

    # ---------------------------------------------------------------- data

    def gen(self, key, rank, n, dtype, kind):
        """Deterministic input of rank `rank` for case `key`: every rank can compute any rank's."""
        torch = self.torch
        g = torch.Generator()
        g.manual_seed(zlib.crc32(("%s|%d|%d|%s|%s" % (key, rank, n, dtype, kind)).encode()))
        if kind == "sum":  # |sum| <= 3 * ws: exact in every dtype, no wraparound
            lo = 0 if dtype == torch.uint8 else -3
            return torch.randint(lo, 4, (n,), generator=g).to(dtype)
        if kind == "prod":  # |product| <= 2 ** ws <= 16: exact, fits int8
            vals = torch.tensor([1, 2] if dtype == torch.uint8 else [1, 2, -1])
            return vals[torch.randint(0, len(vals), (n,), generator=g)].to(dtype)
        if kind == "minmax":  # full range of the dtype
            if dtype.is_floating_point:
                return (torch.randn(n, generator=g, dtype=torch.float64) * 1000).to(dtype)
            if dtype == torch.bool:
                return torch.randint(0, 2, (n,), generator=g).bool()
            info = torch.iinfo(dtype)
            return torch.randint(info.min, info.max, (n,), generator=g, dtype=torch.int64).to(dtype)
        if kind == "bytes":  # data movement: arbitrary bit patterns (NaNs included)
            if dtype == torch.bool:
                return torch.randint(0, 2, (n,), generator=g).bool()
            size = torch.empty(0, dtype=dtype).element_size()
            return torch.randint(0, 256, (n * size,), generator=g, dtype=torch.uint8).view(dtype)
        raise ValueError(kind)

    def kind(self, opname):
        return {"SUM": "sum", "AVG": "sum", "PRODUCT": "prod", "MIN": "minmax",
                "MAX": "minmax"}[opname]

    def py_reduce(self, tensors, opname, dtype, nranks=None):
        """Reference reduction of the per-rank inputs, computed exactly in float64/int64."""
        torch = self.torch
        nranks = nranks or len(tensors)
        if dtype == torch.bool:
            st = torch.stack(tensors)
            return st.all(0) if opname == "MIN" else st.any(0)
        if dtype.is_complex:
            s = torch.stack(tensors).to(torch.complex128).sum(0)
            return (s / nranks if opname == "AVG" else s).to(dtype)
        fl = dtype.is_floating_point
        st = torch.stack(tensors).to(torch.float64 if fl else torch.int64)
        if opname == "SUM":
            r = st.sum(0)
        elif opname == "PRODUCT":
            r = st.prod(0)
        elif opname == "MIN":
            r = st.amin(0)
        elif opname == "MAX":
            r = st.amax(0)
        elif opname == "AVG":
            r = st.sum(0) / nranks if fl else torch.div(st.sum(0), nranks, rounding_mode="trunc")
        return r.to(dtype)

    def gloo_op(self, opname):
        """gloo has no AVG: run SUM there and divide afterwards (gloo_fix)."""
        return self.OPD["SUM" if opname == "AVG" else opname]

    def gloo_fix(self, t, opname, nranks=None):
        if opname != "AVG":
            return t
        nranks = nranks or self.ws
        if t.is_floating_point():
            return t / nranks
        return self.torch.div(t, nranks, rounding_mode="trunc")

    def gloo_all_gather(self, outs, inp):
        """gloo all_gather into new tensors shaped like outs, or None for empty tensors: gloo in
        torch 1.13 dies with SIGFPE on an all_gather of 0 elements (the Python value is then the
        only reference)."""
        if inp.numel() == 0:
            return None
        og = [self.torch.zeros_like(o) for o in outs]
        self.dist.all_gather([self.gview(o) for o in og], self.gview(inp), group=self.gloo)
        return og

    def gview(self, t):
        """gloo moves no bfloat16: carry bf16 bytes as float16 (same size) for data movement."""
        return t.view(self.torch.float16) if t.dtype == self.torch.bfloat16 else t

    def avg_tol(self, opname, dtype, nranks=None):
        nranks = nranks or self.ws
        return (opname == "AVG" and dtype.is_floating_point
                and (nranks & (nranks - 1)) != 0)

    # ---------------------------------------------------------------- run

    def run_all(self):
        torch = self.torch
        big = not self.args.quick
        steps = [
            self.t_allreduce, self.t_allreduce_coalesced, self.t_broadcast, self.t_reduce,
            self.t_all_gather, self.t_all_gather_base, self.t_all_gather_coalesced, self.t_gather,
            self.t_scatter, self.t_reduce_scatter, self.t_reduce_scatter_base,
            self.t_all_to_all_single, self.t_all_to_all, self.t_barrier,
            self.t_async, self.t_inplace, self.t_extra_dtypes, self.t_subgroups, self.t_errors,
        ]
        if big:
            steps.append(self.t_big)
        # Last: a point-to-point pattern that deadlocks breaks the communicator (podccl's
        # timeout), and everything after it would fail too, hiding what else is wrong.
        steps.append(self.t_send_recv)
        if self.args.backend == "gloo":
            steps.remove(self.t_errors)
        times = []
        for step in steps:
            self.current = step.__name__
            t0 = time.time()
            step()
            times.append("%s %.1f" % (step.__name__[2:], time.time() - t0))
        if os.environ.get("PODCCL_TORCH_STEP_TIMES") and self.rank == 0:
            say("rank 0 seconds per step: " + ", ".join(times))
        # Final proof that the communicator is still healthy after everything above.
        self.current = "final"
        self.guarded("final allreduce", torch.float32, 3, lambda: self.one_allreduce("final"))

    # ---------------------------------------------------------------- allreduce

    def allreduce_case(self, key, dtype, n, opname, group=None, ranks=None):
        """One allreduce on the group under test and on gloo; both vs the Python reference."""
        dist = self.dist
        group = group or self.pg
        gg = self.gloo if group is self.pg else self.sub_gloo[tuple(ranks)]
        ranks = ranks or list(range(self.ws))
        kind = self.kind(opname)
        inputs = [self.gen(key, r, n, dtype, kind) for r in ranks]
        mine = inputs[ranks.index(self.rank)]
        exp = self.py_reduce(inputs, opname, dtype)
        tol = self.avg_tol(opname, dtype, len(ranks))
        coll = "all_reduce(%s)%s" % (opname, "" if ranks == list(range(self.ws)) else
                                    " group %s" % ranks)
        t = mine.clone()
        dist.all_reduce(t, op=self.OPD[opname], group=group)
        self.compare(coll, dtype, n, t, exp, "vs python", tol)
        if dtype in self.GLOO_DTYPES:
            tg = mine.clone()
            dist.all_reduce(tg, op=self.gloo_op(opname), group=gg)
            tg = self.gloo_fix(tg, opname, len(ranks))
            self.compare(coll, dtype, n, tg, exp, "gloo vs python (test self-check)", tol)
            self.compare(coll, dtype, n, t, tg, "vs gloo", tol)

    def t_allreduce(self):
        self.sub_gloo = {}
        for dtype in self.DTYPES:
            for n in SIZES:
                for opname, _ in self.OPS:
                    self.guarded("all_reduce(%s)" % opname, dtype, n,
                                 lambda: self.allreduce_case("ar", dtype, n, opname))

    def one_allreduce(self, key):
        """Small health check: a SUM allreduce of float32 compared with the reference."""
        self.allreduce_case(key, self.torch.float32, 3, "SUM")

    def t_allreduce_coalesced(self):
        dist = self.dist
        for dtype in self.DTYPES:
            for n in SIZES:
                sizes = [n, 1, 0, 7]
                for opname, _ in self.OPS:
                    def case():
                        kind = self.kind(opname)
                        ins = [[self.gen("arc%d" % i, r, s, dtype, kind) for r in range(self.ws)]
                               for i, s in enumerate(sizes)]
                        exp = [self.py_reduce(x, opname, dtype) for x in ins]
                        tol = self.avg_tol(opname, dtype)
                        coll = "all_reduce_coalesced(%s)" % opname
                        ts = [x[self.rank].clone() for x in ins]
                        dist.all_reduce_coalesced(ts, op=self.OPD[opname], group=self.pg)
                        self.compare(coll, dtype, n, ts, exp, "vs python", tol)
                        if dtype in self.GLOO_DTYPES:
                            tg = [x[self.rank].clone() for x in ins]
                            dist.all_reduce_coalesced(tg, op=self.gloo_op(opname), group=self.gloo)
                            tg = [self.gloo_fix(x, opname) for x in tg]
                            self.compare(coll, dtype, n, ts, tg, "vs gloo", tol)
                    self.guarded("all_reduce_coalesced(%s)" % opname, dtype, n, case)

    # ---------------------------------------------------------------- rooted

    def broadcast_case(self, key, dtype, n, root, group=None, ranks=None):
        dist = self.dist
        group = group or self.pg
        gg = self.gloo if group is self.pg else self.sub_gloo[tuple(ranks)]
        coll = "broadcast(root %d)%s" % (root, "" if ranks is None else " group %s" % ranks)
        src = self.gen(key, root, n, dtype, "bytes")
        if self.rank == root:
            t, tg = src.clone(), src.clone()
        else:  # receivers start from other bytes so that a missed copy shows
            t = self.gen(key + "junk", self.rank, n, dtype, "bytes")
            tg = t.clone()
        dist.broadcast(t, root, group=group)
        self.compare(coll, dtype, n, t, src, "vs python")
        if dtype in self.GLOO_DTYPES or dtype == self.torch.bfloat16:
            dist.broadcast(self.gview(tg), root, group=gg)
            self.compare(coll, dtype, n, t, tg, "vs gloo")

    def t_broadcast(self):
        for dtype in self.DTYPES:
            for n in SIZES:
                for root in range(self.ws):
                    self.guarded("broadcast(root %d)" % root, dtype, n,
                                 lambda: self.broadcast_case("bc", dtype, n, root))

    def t_reduce(self):
        dist = self.dist
        for dtype in self.DTYPES:
            for n in SIZES:
                for opname, _ in self.OPS:
                    for root in range(self.ws):
                        def case():
                            kind = self.kind(opname)
                            ins = [self.gen("red", r, n, dtype, kind) for r in range(self.ws)]
                            exp = self.py_reduce(ins, opname, dtype)
                            tol = self.avg_tol(opname, dtype)
                            coll = "reduce(%s, root %d)" % (opname, root)
                            t = ins[self.rank].clone()
                            dist.reduce(t, root, op=self.OPD[opname], group=self.pg)
                            if self.rank == root:  # only the root's buffer is defined
                                self.compare(coll, dtype, n, t, exp, "vs python", tol)
                            if dtype in self.GLOO_DTYPES:
                                tg = ins[self.rank].clone()
                                dist.reduce(tg, root, op=self.gloo_op(opname), group=self.gloo)
                                if self.rank == root:
                                    tg = self.gloo_fix(tg, opname)
                                    self.compare(coll, dtype, n, t, tg, "vs gloo", tol)
                        self.guarded("reduce(%s, root %d)" % (opname, root), dtype, n, case)

    # ---------------------------------------------------------------- gathers

    def t_all_gather(self):
        dist = self.dist
        for dtype in self.DTYPES:
            for n in SIZES:
                def case():
                    ins = [self.gen("ag", r, n, dtype, "bytes") for r in range(self.ws)]
                    outs = [self.torch.full((n,), 7).to(dtype) for _ in range(self.ws)]
                    dist.all_gather(outs, ins[self.rank].clone(), group=self.pg)
                    self.compare("all_gather", dtype, n, outs, ins, "vs python")
                    og = self.gloo_all_gather(outs, ins[self.rank])
                    if og is not None:
                        self.compare("all_gather", dtype, n, outs, og, "vs gloo")
                self.guarded("all_gather", dtype, n, case)

    def gather_base_case(self, key, dtype, n, inplace=False):
        """_all_gather_base; gloo has none in 1.13: its reference is gloo all_gather + cat."""
        dist, torch = self.dist, self.torch
        coll = "_all_gather_base" + (" in place" if inplace else "")
        ins = [self.gen(key, r, n, dtype, "bytes") for r in range(self.ws)]
        exp = torch.cat(ins)
        out = torch.full((n * self.ws,), 5).to(dtype)
        if inplace:  # the input is this rank's chunk of the output (NCCL's in-place rule)
            inp = out.narrow(0, self.rank * n, n)
            inp.copy_(ins[self.rank])
        else:
            inp = ins[self.rank].clone()
        dist._all_gather_base(out, inp, group=self.pg)
        self.compare(coll, dtype, n, out, exp, "vs python")
        og = self.gloo_all_gather(ins, ins[self.rank])
        if og is not None:
            self.compare(coll, dtype, n, out, torch.cat(og), "vs gloo")

    def t_all_gather_base(self):
        for dtype in self.DTYPES:
            for n in SIZES:
                self.guarded("_all_gather_base", dtype, n,
                             lambda: self.gather_base_case("agb", dtype, n))
        # the public 1.13 name of the same collective
        dist, torch = self.dist, self.torch
        for n in (0, 5, 1000):
            def case():
                ins = [self.gen("agit", r, n, torch.int32, "bytes") for r in range(self.ws)]
                out = torch.empty(n * self.ws, dtype=torch.int32)
                dist.all_gather_into_tensor(out, ins[self.rank], group=self.pg)
                self.compare("all_gather_into_tensor", torch.int32, n, out, torch.cat(ins),
                             "vs python")
            self.guarded("all_gather_into_tensor", torch.int32, n, case)

    def t_all_gather_coalesced(self):
        dist, torch = self.dist, self.torch
        for dtype in self.DTYPES:
            for n in SIZES:
                sizes = [n, 3, 0, 1]
                def case():
                    ins = [[self.gen("agc%d" % i, r, s, dtype, "bytes") for i, s in enumerate(sizes)]
                           for r in range(self.ws)]
                    outs = [[torch.zeros(s, dtype=dtype) for s in sizes] for _ in range(self.ws)]
                    dist.all_gather_coalesced(outs, [x.clone() for x in ins[self.rank]],
                                              group=self.pg)
                    flat = [x for l in outs for x in l]
                    self.compare("all_gather_coalesced", dtype, n, flat,
                                 [x for l in ins for x in l], "vs python")
                    og = [[torch.zeros(s, dtype=dtype) for s in sizes] for _ in range(self.ws)]
                    dist.all_gather_coalesced([[self.gview(x) for x in l] for l in og],
                                              [self.gview(x) for x in ins[self.rank]],
                                              group=self.gloo)
                    self.compare("all_gather_coalesced", dtype, n, flat,
                                 [x for l in og for x in l], "vs gloo")
                self.guarded("all_gather_coalesced", dtype, n, case)

    def t_gather(self):
        dist, torch = self.dist, self.torch
        for dtype in self.DTYPES:
            for n in SIZES:
                for root in range(self.ws):
                    def case():
                        coll = "gather(root %d)" % root
                        ins = [self.gen("ga", r, n, dtype, "bytes") for r in range(self.ws)]
                        isroot = self.rank == root
                        outs = [torch.zeros(n, dtype=dtype) for _ in range(self.ws)] if isroot else None
                        dist.gather(ins[self.rank].clone(), outs, dst=root, group=self.pg)
                        og = [torch.zeros(n, dtype=dtype) for _ in range(self.ws)] if isroot else None
                        dist.gather(self.gview(ins[self.rank]),
                                    [self.gview(o) for o in og] if isroot else None,
                                    dst=root, group=self.gloo)
                        if isroot:
                            self.compare(coll, dtype, n, outs, ins, "vs python")
                            self.compare(coll, dtype, n, outs, og, "vs gloo")
                    self.guarded("gather(root %d)" % root, dtype, n, case)

    def t_scatter(self):
        dist, torch = self.dist, self.torch
        for dtype in self.DTYPES:
            for n in SIZES:
                for root in range(self.ws):
                    def case():
                        coll = "scatter(root %d)" % root
                        chunks = [self.gen("sc%d" % root, r, n, dtype, "bytes")
                                  for r in range(self.ws)]
                        isroot = self.rank == root
                        out = self.gen("scjunk", self.rank, n, dtype, "bytes")
                        dist.scatter(out, [c.clone() for c in chunks] if isroot else None,
                                     src=root, group=self.pg)
                        self.compare(coll, dtype, n, out, chunks[self.rank], "vs python")
                        og = torch.zeros(n, dtype=dtype)
                        dist.scatter(self.gview(og), [self.gview(c) for c in chunks] if isroot
                                     else None, src=root, group=self.gloo)
                        self.compare(coll, dtype, n, out, og, "vs gloo")
                    self.guarded("scatter(root %d)" % root, dtype, n, case)

    # ---------------------------------------------------------------- reduce-scatter

    def rs_gloo_ref(self, full_input, n, opname, dtype):
        """gloo has no reduce_scatter in 1.13: its reference is gloo all_reduce, then this chunk."""
        if dtype not in self.GLOO_DTYPES:
            return None
        t = full_input.clone()
        self.dist.all_reduce(t, op=self.gloo_op(opname), group=self.gloo)
        return self.gloo_fix(t, opname).narrow(0, self.rank * n, n).clone()

    def rs_case(self, key, dtype, n, opname, base, inplace=False):
        dist, torch = self.dist, self.torch
        kind = self.kind(opname)
        # rank r's full input: ws chunks of n; chunk j goes to rank j
        full = [self.gen(key, r, n * self.ws, dtype, kind) for r in range(self.ws)]
        exp = self.py_reduce([f.narrow(0, self.rank * n, n) for f in full], opname, dtype)
        tol = self.avg_tol(opname, dtype)
        mine = full[self.rank]
        name = ("_reduce_scatter_base" if base else "reduce_scatter") + "(%s)%s" % (
            opname, " in place" if inplace else "")
        if base:
            inp = mine.clone()
            out = inp.narrow(0, self.rank * n, n) if inplace else torch.zeros(n, dtype=dtype)
            dist._reduce_scatter_base(out, inp, op=self.OPD[opname], group=self.pg)
        else:
            lst = [c.clone() for c in mine.split(n)] if n else [mine.clone() for _ in range(self.ws)]
            out = lst[self.rank] if inplace else torch.zeros(n, dtype=dtype)
            dist.reduce_scatter(out, lst, op=self.OPD[opname], group=self.pg)
        self.compare(name, dtype, n, out, exp, "vs python", tol)
        ref = self.rs_gloo_ref(mine, n, opname, dtype)
        if ref is not None:
            self.compare(name, dtype, n, out, ref, "vs gloo", tol)

    def t_reduce_scatter(self):
        for dtype in self.DTYPES:
            for n in SIZES:
                for opname, _ in self.OPS:
                    self.guarded("reduce_scatter(%s)" % opname, dtype, n,
                                 lambda: self.rs_case("rs", dtype, n, opname, False))

    def t_reduce_scatter_base(self):
        for dtype in self.DTYPES:
            for n in SIZES:
                for opname, _ in self.OPS:
                    self.guarded("_reduce_scatter_base(%s)" % opname, dtype, n,
                                 lambda: self.rs_case("rsb", dtype, n, opname, True))
        dist, torch = self.dist, self.torch
        for n in (0, 5, 1000):  # the public 1.13 name of the same collective
            def case():
                full = [self.gen("rst", r, n * self.ws, torch.int64, "sum") for r in range(self.ws)]
                exp = self.py_reduce([f.narrow(0, self.rank * n, n) for f in full], "SUM",
                                     torch.int64)
                out = torch.empty(n, dtype=torch.int64)
                dist.reduce_scatter_tensor(out, full[self.rank], group=self.pg)
                self.compare("reduce_scatter_tensor", torch.int64, n, out, exp, "vs python")
            self.guarded("reduce_scatter_tensor", torch.int64, n, case)

    # ---------------------------------------------------------------- all-to-all

    def splits(self, unit, variant):
        """split[r][j] = elements rank r sends to rank j (zeros included)."""
        ws = self.ws
        if variant == "equal":
            return [[unit] * ws for _ in range(ws)]
        return [[((r * 3 + j * 5 + variant) % 4) * unit for j in range(ws)] for r in range(ws)]

    def a2a_case(self, key, dtype, unit, variant, lists):
        dist, torch = self.dist, self.torch
        ws, me = self.ws, self.rank
        sp = self.splits(unit, variant)
        ins = [self.gen(key, r, sum(sp[r]), dtype, "bytes") for r in range(ws)]
        chunks = [list(ins[r].split(sp[r])) for r in range(ws)]  # chunks[r][j]: r -> j
        exp = [chunks[j][me] for j in range(ws)]
        in_sizes = sp[me]
        out_sizes = [sp[j][me] for j in range(ws)]
        name = "all_to_all%s(%s)" % ("" if lists else "_single", variant if isinstance(variant, str)
                                     else "uneven %d" % variant)
        n = sum(in_sizes)
        if lists:
            outs = [torch.full((s,), 3).to(dtype) for s in out_sizes]
            dist.all_to_all(outs, [c.clone() for c in chunks[me]], group=self.pg)
            got = outs
        else:
            out = torch.full((sum(out_sizes),), 3).to(dtype)
            if variant == "equal":
                dist.all_to_all_single(out, ins[me].clone(), group=self.pg)
            else:
                dist.all_to_all_single(out, ins[me].clone(), out_sizes, in_sizes, group=self.pg)
            got = list(out.split(out_sizes))
        self.compare(name, dtype, n, got, exp, "vs python")
        # gloo reference: gloo's all_to_all_single (gloo has no list all_to_all in 1.13)
        og = torch.zeros(sum(out_sizes), dtype=dtype)
        dist.all_to_all_single(self.gview(og), self.gview(ins[me]), out_sizes, in_sizes,
                               group=self.gloo)
        self.compare(name, dtype, n, got, list(og.split(out_sizes)), "vs gloo")

    def t_all_to_all_single(self):
        for dtype in self.DTYPES:
            for unit in SIZES:
                for variant in ("equal", 0, 1):
                    self.guarded("all_to_all_single(%s)" % variant, dtype, unit,
                                 lambda: self.a2a_case("a2as", dtype, unit, variant, False))

    def t_all_to_all(self):
        for dtype in self.DTYPES:
            for unit in SIZES:
                for variant in ("equal", 0, 2):
                    self.guarded("all_to_all(%s)" % variant, dtype, unit,
                                 lambda: self.a2a_case("a2al", dtype, unit, variant, True))

    # ---------------------------------------------------------------- point to point

    def t_send_recv(self):
        """Reference: Python (every rank knows what its peers send)."""
        dist, torch = self.dist, self.torch
        ws, me = self.ws, self.rank
        right, left = (me + 1) % ws, (me - 1) % ws
        for dtype in self.DTYPES:
            for n in SIZES:
                def ring():
                    # blocking ring: even ranks send first, odd ranks receive first
                    msg = self.gen("ring", me, n, dtype, "bytes")
                    got = self.gen("ringjunk", me, n, dtype, "bytes")
                    if me % 2 == 0:
                        dist.send(msg.clone(), right, group=self.pg)
                        dist.recv(got, left, group=self.pg)
                    else:
                        dist.recv(got, left, group=self.pg)
                        dist.send(msg.clone(), right, group=self.pg)
                    self.compare("send/recv ring", dtype, n, got,
                                 self.gen("ring", left, n, dtype, "bytes"), "vs python")
                self.guarded("send/recv ring", dtype, n, ring)

                def both():
                    # isend/irecv to and from both neighbours at once (at ws 2 both are the same
                    # peer: messages between one pair match in posting order)
                    to_r = self.gen("toright", me, n, dtype, "bytes")
                    to_l = self.gen("toleft", me, n, dtype, "bytes")
                    from_l = torch.zeros(n, dtype=dtype)
                    from_r = torch.zeros(n, dtype=dtype)
                    works = [dist.isend(to_r, right, group=self.pg),
                             dist.isend(to_l, left, group=self.pg),
                             dist.irecv(from_l, left, group=self.pg),
                             dist.irecv(from_r, right, group=self.pg)]
                    for w in reversed(works):
                        w.wait()
                    self.compare("isend/irecv both ways", dtype, n, [from_l, from_r],
                                 [self.gen("toright", left, n, dtype, "bytes"),
                                  self.gen("toleft", right, n, dtype, "bytes")], "vs python")
                self.guarded("isend/irecv both ways", dtype, n, both)

        def pairs():  # rank 0 exchanges with every other rank, others only with rank 0
            peers = range(1, ws) if me == 0 else [0]
            sends, recvs = [], []
            for p in peers:
                buf = torch.zeros(100 + max(p, me), dtype=torch.int64)
                recvs.append((p, buf, dist.irecv(buf, p, group=self.pg)))
            for p in peers:
                msg = self.gen("star%d" % p, me, 100 + max(p, me), torch.int64, "bytes")
                sends.append(dist.isend(msg, p, group=self.pg))
            for w in sends:
                w.wait()
            for p, buf, w in recvs:
                w.wait()
                self.compare("isend/irecv star", torch.int64, buf.numel(), buf,
                             self.gen("star%d" % me, p, 100 + max(p, me), torch.int64, "bytes"),
                             "vs python (from rank %d)" % p)
        self.guarded("isend/irecv star", torch.int64, 100, pairs)

    def t_barrier(self):
        """Each rank marks a file before the barrier; after it every rank sees every mark (one
        rank is slow each round, so a barrier that does not wait is caught)."""
        dist = self.dist
        for rnd in range(3):
            def case():
                slow = rnd % self.ws
                if self.rank == slow:
                    time.sleep(0.3)
                with open(os.path.join(self.args.tmpdir, "barrier%d.%d" % (rnd, self.rank)), "w"):
                    pass
                dist.barrier(group=self.pg)
                missing = [r for r in range(self.ws) if not os.path.exists(
                    os.path.join(self.args.tmpdir, "barrier%d.%d" % (rnd, r)))]
                self.checks += 1
                if missing:
                    self.fail("barrier", None, None, "round %d: passed the barrier before ranks %s "
                              "reached it" % (rnd, missing))
            self.guarded("barrier", None, None, case)
        w = dist.barrier(group=self.pg, async_op=True)
        self.guarded("barrier async", None, None, w.wait)

    # ---------------------------------------------------------------- async

    def t_async(self):
        dist, torch = self.dist, self.torch
        ws, me = self.ws, self.rank

        def many():
            # several outstanding calls of different kinds, completed in reverse order
            n = 4099
            ins = [[self.gen("as%d" % k, r, n, torch.float32, "sum") for r in range(ws)]
                   for k in range(4)]
            ts = [x[me].clone() for x in ins]
            works = [dist.all_reduce(t, async_op=True, group=self.pg) for t in ts]
            bsrc = self.gen("asb", ws - 1, n, torch.int64, "bytes")
            b = bsrc.clone() if me == ws - 1 else torch.zeros(n, dtype=torch.int64)
            works.append(dist.broadcast(b, ws - 1, async_op=True, group=self.pg))
            ag_in = self.gen("asag", me, 33, torch.float16, "bytes")
            ag_out = [torch.zeros(33, dtype=torch.float16) for _ in range(ws)]
            works.append(dist.all_gather(ag_out, ag_in, async_op=True, group=self.pg))
            for w in reversed(works):
                w.wait()
            for w in works:
                self.checks += 1
                if not w.is_completed():
                    self.fail("async", None, None, "is_completed() false after wait()")
                    break
            self.compare("async all_reduce x4 (wait)", torch.float32, n, ts,
                         [self.py_reduce(x, "SUM", torch.float32) for x in ins], "vs python")
            self.compare("async broadcast (wait)", torch.int64, n, b, bsrc, "vs python")
            self.compare("async all_gather (wait)", torch.float16, 33, ag_out,
                         [self.gen("asag", r, 33, torch.float16, "bytes") for r in range(ws)],
                         "vs python")
        self.guarded("async wait", torch.float32, 4099, many)

        def futures():
            n = 1025
            ins = [self.gen("fu", r, n, torch.int32, "sum") for r in range(ws)]
            t = ins[me].clone()
            w = dist.all_reduce(t, async_op=True, group=self.pg)
            res = w.get_future().wait()
            exp = self.py_reduce(ins, "SUM", torch.int32)
            self.compare("async all_reduce get_future().wait()", torch.int32, n, t, exp,
                         "tensor vs python")
            self.compare("async all_reduce get_future().wait()", torch.int32, n, list(res), [exp],
                         "future value vs python")
            # a chained future (what DDP communication hooks do)
            t2 = ins[me].clone().to(torch.float64)
            w2 = dist.all_reduce(t2, async_op=True, group=self.pg)
            chained = w2.get_future().then(lambda f: f.value()[0] * 2)
            self.compare("get_future().then()", torch.float64, n, chained.wait(),
                         exp.to(torch.float64) * 2, "vs python")
            # futures of other collectives
            outs = [torch.zeros(n, dtype=torch.int32) for _ in range(ws)]
            w3 = dist.all_gather(outs, ins[me], async_op=True, group=self.pg)
            w3.get_future().wait()
            self.compare("async all_gather get_future().wait()", torch.int32, n, outs, ins,
                         "vs python")
            rs_out = torch.zeros(n, dtype=torch.int32)
            full = [self.gen("fursb", r, n * ws, torch.int32, "sum") for r in range(ws)]
            w4 = dist._reduce_scatter_base(rs_out, full[me], async_op=True, group=self.pg)
            w4.get_future().wait()
            self.compare("async _reduce_scatter_base get_future().wait()", torch.int32, n, rs_out,
                         self.py_reduce([f.narrow(0, me * n, n) for f in full], "SUM",
                                        torch.int32), "vs python")
            a2a_out = torch.zeros(n * ws, dtype=torch.int32)
            a2a_in = [self.gen("fua2a", r, n * ws, torch.int32, "bytes") for r in range(ws)]
            w5 = dist.all_to_all_single(a2a_out, a2a_in[me], async_op=True, group=self.pg)
            w5.get_future().wait()
            self.compare("async all_to_all_single get_future().wait()", torch.int32, n, a2a_out,
                         torch.cat([a2a_in[r].narrow(0, me * n, n) for r in range(ws)]),
                         "vs python")
        self.guarded("async get_future", torch.int32, 1025, futures)

    # ---------------------------------------------------------------- in place

    def t_inplace(self):
        """In-place forms: all_reduce/broadcast/reduce are in place by nature (covered above);
        here: _all_gather_base whose input is this rank's chunk of the output, reduce_scatter
        whose output is this rank's chunk of the input (list and base), all_gather whose output
        list holds the input tensor itself, gather whose root list holds the input itself."""
        dist, torch = self.dist, self.torch
        ws, me = self.ws, self.rank
        for dtype in (torch.float32, torch.bfloat16, torch.int8, torch.int64):
            for n in (1, 1023, 64 * 1024 + 3):
                self.guarded("_all_gather_base in place", dtype, n,
                             lambda: self.gather_base_case("agbip", dtype, n, inplace=True))
                for opname in ("SUM", "MAX", "AVG"):
                    self.guarded("_reduce_scatter_base(%s) in place" % opname, dtype, n,
                                 lambda: self.rs_case("rsbip", dtype, n, opname, True, True))
                    self.guarded("reduce_scatter(%s) in place" % opname, dtype, n,
                                 lambda: self.rs_case("rsip", dtype, n, opname, False, True))

                def ag():
                    ins = [self.gen("agip", r, n, dtype, "bytes") for r in range(ws)]
                    mine = ins[me].clone()
                    outs = [mine if r == me else torch.zeros(n, dtype=dtype) for r in range(ws)]
                    dist.all_gather(outs, mine, group=self.pg)
                    self.compare("all_gather in place", dtype, n, outs, ins, "vs python")
                self.guarded("all_gather in place", dtype, n, ag)

                def ga():
                    ins = [self.gen("gaip", r, n, dtype, "bytes") for r in range(ws)]
                    mine = ins[me].clone()
                    root = ws - 1
                    outs = ([mine if r == me else torch.zeros(n, dtype=dtype) for r in range(ws)]
                            if me == root else None)
                    dist.gather(mine, outs, dst=root, group=self.pg)
                    if me == root:
                        self.compare("gather in place", dtype, n, outs, ins, "vs python")
                self.guarded("gather in place", dtype, n, ga)

    # ---------------------------------------------------------------- beyond the 8 dtypes

    def t_extra_dtypes(self):
        """The contract's extras, checked against Python (gloo moves none of these dtypes):
        bool MIN/MAX, complex SUM/AVG, and data movement of bool, int16, complex128."""
        dist, torch = self.dist, self.torch
        ws, me = self.ws, self.rank
        for n in (0, 1, 1023, 64 * 1024 + 3):
            for opname in ("MIN", "MAX"):
                def bool_red():
                    ins = [self.gen("bool", r, n, torch.bool, "minmax") for r in range(ws)]
                    t = ins[me].clone()
                    dist.all_reduce(t, op=self.OPD[opname], group=self.pg)
                    self.compare("all_reduce(%s)" % opname, torch.bool, n, t,
                                 self.py_reduce(ins, opname, torch.bool), "vs python")
                    t = ins[me].clone()
                    dist.reduce(t, 0, op=self.OPD[opname], group=self.pg)
                    if me == 0:
                        self.compare("reduce(%s, root 0)" % opname, torch.bool, n, t,
                                     self.py_reduce(ins, opname, torch.bool), "vs python")
                self.guarded("all_reduce(%s)" % opname, torch.bool, n, bool_red)
            for dtype in (torch.complex64, torch.complex128):
                for opname in ("SUM", "AVG"):
                    def cplx():
                        # real and imaginary parts both small integers: exact sums
                        ins = [torch.complex(self.gen("cre", r, n, torch.float64, "sum"),
                                             self.gen("cim", r, n, torch.float64, "sum")).to(dtype)
                               for r in range(ws)]
                        exp = self.py_reduce(ins, opname, dtype)
                        tol = self.avg_tol(opname, torch.float32)
                        t = ins[me].clone()
                        # all_reduce views complex as real in torch's Python layer ...
                        dist.all_reduce(t, op=self.OPD[opname], group=self.pg)
                        self.compare("all_reduce(%s)" % opname, dtype, n,
                                     torch.view_as_real(t), torch.view_as_real(exp), "vs python",
                                     tol)
                        # ... reduce does not: this one reaches the backend as complex
                        t = ins[me].clone()
                        dist.reduce(t, ws - 1, op=self.OPD[opname], group=self.pg)
                        if me == ws - 1:
                            self.compare("reduce(%s, root %d)" % (opname, ws - 1), dtype, n,
                                         torch.view_as_real(t), torch.view_as_real(exp),
                                         "vs python", tol)
                    self.guarded("all_reduce/reduce(%s)" % opname, dtype, n, cplx)
            for dtype in (torch.bool, torch.int16, torch.complex128):
                def move():
                    src = self.gen("xb", 0, n, dtype, "bytes")
                    t = src.clone() if me == 0 else torch.zeros(n, dtype=dtype)
                    dist.broadcast(t, 0, group=self.pg)
                    self.compare("broadcast(root 0)", dtype, n, t, src, "vs python")
                    ins = [self.gen("xag", r, n, dtype, "bytes") for r in range(ws)]
                    outs = [torch.zeros(n, dtype=dtype) for _ in range(ws)]
                    dist.all_gather(outs, ins[me], group=self.pg)
                    self.compare("all_gather", dtype, n, outs, ins, "vs python")
                    out = torch.zeros(n * ws, dtype=dtype)
                    dist._all_gather_base(out, ins[me], group=self.pg)
                    self.compare("_all_gather_base", dtype, n, out, torch.cat(ins), "vs python")
                    a2a = [self.gen("xa2a", r, n * ws, dtype, "bytes") for r in range(ws)]
                    out = torch.zeros(n * ws, dtype=dtype)
                    dist.all_to_all_single(out, a2a[me], group=self.pg)
                    self.compare("all_to_all_single", dtype, n, out,
                                 torch.cat([a2a[r].narrow(0, me * n, n) for r in range(ws)]),
                                 "vs python")
                self.guarded("data movement", dtype, n, move)

    # ---------------------------------------------------------------- subgroups

    def t_subgroups(self):
        """new_group on subsets: ranks [0, 2] (world size >= 3) and every rank but 0. All ranks
        create every group (new_group is collective over the world), in the same order."""
        dist, torch = self.dist, self.torch
        ws, me = self.ws, self.rank
        subsets = []
        if ws >= 3:
            subsets.append([0, 2])
        subsets.append(list(range(1, ws)))
        groups = []
        for ranks in subsets:
            pg = dist.new_group(ranks, backend=self.args.backend)
            gg = dist.new_group(ranks, backend="gloo")
            self.sub_gloo[tuple(ranks)] = gg
            groups.append((ranks, pg))
        for ranks, pg in groups:
            if me not in ranks:
                continue
            self.checks += 1
            if dist.get_world_size(pg) != len(ranks) or dist.get_rank(pg) != ranks.index(me):
                self.fail("new_group %s" % ranks, None, None, "size %d rank %d"
                          % (dist.get_world_size(pg), dist.get_rank(pg)))
            for dtype in (torch.float32, torch.bfloat16, torch.int64, torch.uint8):
                for n in (0, 1, 1023, 64 * 1024 + 3):
                    for opname in ("SUM", "MAX", "AVG"):
                        self.guarded("all_reduce(%s) group %s" % (opname, ranks), dtype, n,
                                     lambda: self.allreduce_case("sg%s" % ranks, dtype, n, opname,
                                                                 pg, ranks))
                    for root in ranks:  # global rank numbers
                        self.guarded("broadcast(root %d) group %s" % (root, ranks), dtype, n,
                                     lambda: self.broadcast_case("sgb%s" % ranks, dtype, n, root,
                                                                 pg, ranks))
        # the world group still works after (and between) subgroup traffic
        self.guarded("all_reduce after subgroups", torch.float32, 3,
                     lambda: self.one_allreduce("aftersub"))

    # ---------------------------------------------------------------- errors

    def t_errors(self):
        """Unsupported reductions and bad tensors raise RuntimeError/ValueError whose message
        names the problem; these are local checks, so the group must work afterwards."""
        dist, torch = self.dist, self.torch
        R = dist.ReduceOp
        ws = self.ws

        def expect_error(what, fn, words):
            """words: list of alternatives lists; each inner list needs one match (any case)."""
            self.checks += 1
            try:
                fn()
            except (RuntimeError, ValueError) as ex:
                msg = str(ex)
                low = msg.lower()
                missing = [alts for alts in words if not any(a.lower() in low for a in alts)]
                if missing:
                    self.fail("error case: " + what, None, None,
                              "message does not name %s: %r" % (" / ".join(missing[0]), msg[:300]))
            except Exception as ex:
                self.fail("error case: " + what, None, None, "raised %s (want RuntimeError or "
                          "ValueError): %s" % (type(ex).__name__, str(ex)[:300]))
            else:
                self.fail("error case: " + what, None, None, "did not raise")
            # the communicator still works
            self.guarded("all_reduce after error case: " + what, torch.float32, 3,
                         lambda: self.one_allreduce("err" + what))

        for name in ("BAND", "BOR", "BXOR"):
            op = getattr(R, name)
            expect_error("all_reduce %s int32" % name,
                         lambda: dist.all_reduce(torch.ones(16, dtype=torch.int32), op=op,
                                                 group=self.pg), [[name]])
            expect_error("reduce %s int64" % name,
                         lambda: dist.reduce(torch.ones(16, dtype=torch.int64), 0, op=op,
                                             group=self.pg), [[name]])
        expect_error("all_reduce SUM bool",
                     lambda: dist.all_reduce(torch.ones(16, dtype=torch.bool), group=self.pg),
                     [["bool"], ["SUM"]])
        expect_error("all_reduce PRODUCT bool",
                     lambda: dist.all_reduce(torch.ones(16, dtype=torch.bool), op=R.PRODUCT,
                                             group=self.pg), [["bool"], ["PROD"]])
        expect_error("all_reduce SUM int16",
                     lambda: dist.all_reduce(torch.ones(16, dtype=torch.int16), group=self.pg),
                     [["int16", "short"], ["SUM"]])
        expect_error("reduce_scatter_base MIN int16",
                     lambda: dist._reduce_scatter_base(torch.ones(16, dtype=torch.int16),
                                                       torch.ones(16 * ws, dtype=torch.int16),
                                                       op=R.MIN, group=self.pg),
                     [["int16", "short"], ["MIN"]])
        # all_reduce refuses complex MAX in torch's own Python layer ...
        expect_error("all_reduce MAX complex64",
                     lambda: dist.all_reduce(torch.ones(16, dtype=torch.complex64), op=R.MAX,
                                             group=self.pg), [["complex"]])
        # ... reduce passes the complex tensor down: the backend's own check
        expect_error("reduce MAX complex64",
                     lambda: dist.reduce(torch.ones(16, dtype=torch.complex64), 0, op=R.MAX,
                                         group=self.pg), [["complex"], ["MAX"]])
        expect_error("reduce PRODUCT complex128",
                     lambda: dist.reduce(torch.ones(16, dtype=torch.complex128), 0,
                                         op=R.PRODUCT, group=self.pg), [["complex"], ["PROD"]])
        nc = torch.ones(8, 8).t()
        expect_error("all_reduce non-contiguous",
                     lambda: dist.all_reduce(nc, group=self.pg), [["contiguous"]])
        expect_error("broadcast non-contiguous",
                     lambda: dist.broadcast(torch.ones(8, 8)[:, 1], 0, group=self.pg),
                     [["contiguous"]])
        expect_error("all_gather non-contiguous output",
                     lambda: dist.all_gather([torch.ones(8, 2)[:, 0] for _ in range(ws)],
                                             torch.ones(8), group=self.pg), [["contiguous"]])

    # ---------------------------------------------------------------- 4 Mi elements

    def t_big(self):
        """The largest size on a few collectives and dtypes (keeps the suite near 2 minutes)."""
        torch = self.torch
        B = BIG
        self.guarded("all_reduce(SUM)", torch.float32, B,
                     lambda: self.allreduce_case("big", torch.float32, B, "SUM"))
        self.guarded("all_reduce(SUM)", torch.bfloat16, B,
                     lambda: self.allreduce_case("big", torch.bfloat16, B, "SUM"))
        self.guarded("all_reduce(MAX)", torch.int64, B,
                     lambda: self.allreduce_case("big", torch.int64, B, "MAX"))
        self.guarded("all_reduce(AVG)", torch.float16, B,
                     lambda: self.allreduce_case("big", torch.float16, B, "AVG"))
        self.guarded("broadcast(root %d)" % (self.ws - 1), torch.float64, B,
                     lambda: self.broadcast_case("bigb", torch.float64, B, self.ws - 1))
        self.guarded("_all_gather_base", torch.uint8, B,
                     lambda: self.gather_base_case("bigag", torch.uint8, B))
        n = B // self.ws
        self.guarded("_reduce_scatter_base(SUM)", torch.int32, n,
                     lambda: self.rs_case("bigrs", torch.int32, n, "SUM", True))
        self.guarded("all_to_all_single(equal)", torch.float32, n,
                     lambda: self.a2a_case("biga2a", torch.float32, n, "equal", False))


def main():
    args = parse_args()
    if args.rank is None:
        sys.exit(launch(args))
    worker(args)


if __name__ == "__main__":
    main()
