#!/usr/bin/python3
"""torch-ddp-bench.py: DistributedDataParallel step time, podccl against gloo, in the same job.

torchvision's ResNet-18 (weights=None: random initial weights, nothing downloaded) on random input,
SGD with momentum, -np local ranks started by the script itself (or one rank per process under
torchrun). Each rank keeps one torch thread (torch.set_num_threads(1)). For each backend the job
holds two DDP copies of the model on a group of that backend (the default group is gloo and only
carries bookkeeping). One round runs, per backend in turn (the order flips from round to round):

  ddp     plain DDP steps (forward + backward + optimizer step), DDP's built-in all-reduce;
  nosync  the same steps inside model.no_sync() (no communication at all);
  hooked  DDP steps on the second copy, whose comm hook wraps the default allreduce_hook and
          records for every bucket the time it was handed to the backend and the time its
          future completed.

Every phase: warm-up steps, a barrier on the group, timed steps; step time = max over ranks of
the mean. The communication share is reported by both methods, each named in the output:
  no_sync method: (t_ddp - t_nosync) / t_ddp, the step time communication adds;
  hook method:    wait = end of backward - submission of the last bucket (the backward pass has no
                  compute left then; it only waits for the buckets in flight and copies the
                  results back), as a share of the hooked step; plus "in flight": the union of
                  the buckets' submission-to-completion intervals per step (overlaps compute).
At the end the hooked copies' parameters are compared across ranks (they must be identical).

usage: /usr/bin/python3 bench/torch-ddp-bench.py [-np 2] [--batch 8] [--image 64] [--steps 10]
           [--warmup 3] [--rounds 2] [--backends podccl,gloo] [--build DIR]
"""

import argparse
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("torch_bench", os.path.join(HERE, "torch-bench.py"))
tb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tb)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="torch-ddp-bench.py",
                                description="DDP step time with ResNet-18, podccl vs gloo.")
    p.add_argument("-np", type=int, default=2, help="local ranks to start (default 2)")
    p.add_argument("--batch", type=int, default=8, help="images per rank per step (default 8)")
    p.add_argument("--image", type=int, default=64, help="image side, pixels (default 64; 224 is "
                   "ImageNet's)")
    p.add_argument("--classes", type=int, default=1000, help="output classes (default 1000)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per phase (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up steps per phase (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="rounds over both backends (default 2)")
    p.add_argument("--bucket-mb", type=float, default=25.0, help="DDP bucket_cap_mb (default 25)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank (default 1)")
    p.add_argument("--backends", default="podccl,gloo",
                   help="two backends A,B (default podccl,gloo; gloo,gloo runs without podccl)")
    p.add_argument("--build", metavar="DIR", help="podccl build tree (DIR/python, DIR/.libs)")
    p.add_argument("--timeout", type=int, default=300, help="process group timeout, s")
    p.add_argument("--grace", type=int, default=30,
                   help="after one rank fails, kill the others after this many s (default 30)")
    a = p.parse_args(argv)
    a.backends = a.backends.split(",")
    if len(a.backends) != 2:
        p.error("--backends takes exactly two names, A,B")
    if min(a.np, a.batch, a.image, a.steps, a.rounds, a.threads) < 1 or a.warmup < 0:
        p.error("counts must be positive")
    return a


class Rank:
    def __init__(self, a):
        import torch
        import torch.distributed as dist
        self.torch, self.dist, self.a = torch, dist, a
        torch.set_num_threads(a.threads)
        self.rank, self.n, self.groups, self.names = tb.open_groups(dist, a.backends, a.timeout,
                                                                    "torch-ddp-bench")

    def say(self, *x):
        if self.rank == 0:
            print(*x)
            sys.stdout.flush()

    def max_over_ranks(self, v):
        t = self.torch.tensor([float(v)], dtype=self.torch.float64)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return t.item()

    def build(self, group, hooked):
        import torchvision
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        from torch.nn.parallel import DistributedDataParallel as DDP
        torch = self.torch
        torch.manual_seed(1234)  # same start on every rank (DDP broadcasts rank 0's anyway)
        net = torchvision.models.resnet18(weights=None, num_classes=self.a.classes)
        m = DDP(net, process_group=group, bucket_cap_mb=self.a.bucket_mb)
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        rec = None
        if hooked:
            rec = {"submit": [], "done": []}

            def hook(state, bucket):
                rec["submit"].append(time.perf_counter())
                fut = default_hooks.allreduce_hook(state, bucket)

                def done(f):
                    rec["done"].append(time.perf_counter())
                    return f.value()
                return fut.then(done)
            m.register_comm_hook(group, hook)
        return m, opt, rec

    def phase(self, model, opt, group, mode, rec):
        """Runs warm-up and timed steps; returns per-rank means (step s, wait s, in-flight s)."""
        torch, a = self.torch, self.a
        lossf = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            if rec is not None:
                rec["submit"].clear()
                rec["done"].clear()
            loss = lossf(model(self.x), self.y)
            loss.backward()
            t_bwd = time.perf_counter()
            opt.step()
            return t_bwd

        def one():
            if mode == "nosync":
                with model.no_sync():
                    return step()
            return step()

        for _ in range(a.warmup):
            one()
        self.dist.barrier(group=group)
        total, wait, flight = 0.0, 0.0, 0.0
        for _ in range(a.steps):
            t0 = time.perf_counter()
            t_bwd = one()
            total += time.perf_counter() - t0
            if rec is not None and rec["submit"]:
                wait += max(0.0, t_bwd - max(rec["submit"]))
                iv = sorted(zip(rec["submit"], rec["done"]))
                busy, cs, ce = 0.0, iv[0][0], iv[0][1]
                for s, e in iv[1:]:
                    if s > ce:
                        busy += ce - cs
                        cs, ce = s, e
                    else:
                        ce = max(ce, e)
                flight += busy + ce - cs
        k = a.steps
        return total / k, wait / k, flight / k

    def run(self):
        torch, a = self.torch, self.a
        torch.manual_seed(100 + self.rank)
        self.x = torch.randn(a.batch, 3, a.image, a.image)
        self.y = torch.randint(0, a.classes, (a.batch,))
        models = []
        for g in self.groups:
            models.append((self.build(g, False), self.build(g, True)))
        nparams = sum(p.numel() for p in models[0][0][0].parameters())
        self.say("# torch-ddp-bench: torch %s, ResNet-18 (weights=None), %.2f M parameters = %.1f MB "
                 "of float32 gradients per step" % (torch.__version__, nparams / 1e6,
                                                    nparams * 4 / 1e6))
        self.say("# nranks %d, batch %d x 3x%dx%d per rank, random data, SGD momentum 0.9, "
                 "bucket_cap_mb %g, torch threads per rank %d" %
                 (self.n, a.batch, a.image, a.image, a.bucket_mb, torch.get_num_threads()))
        self.say("# per phase: %d warm-up + %d timed steps; time = max over ranks of the mean step "
                 "time (forward + backward + optimizer step)" % (a.warmup, a.steps))
        self.say("# share (no_sync method) = (ddp - nosync) / ddp;  wait (hook method) = end of "
                 "backward - submission of the last bucket, share = wait / hooked step;")
        self.say("# in flight (hook method) = union of bucket submission..completion intervals "
                 "per step (overlaps the backward pass)")
        hdr = "# %5s  %-8s  %9s  %9s  %8s  %9s  %9s  %8s  %9s" % (
            "round", "backend", "ddp", "nosync", "share", "hooked", "wait", "share", "inflight")
        self.say(hdr)
        self.say("# %5s  %-8s  %9s  %9s  %8s  %9s  %9s  %8s  %9s" % (
            "", "", "(ms)", "(ms)", "no_sync", "(ms)", "(ms)", "hook", "(ms)"))
        acc = {b: [] for b in (0, 1)}
        for r in range(a.rounds):
            for bi in ((0, 1) if r % 2 == 0 else (1, 0)):
                (plain, popt, _), (hk, hopt, rec) = models[bi]
                g = self.groups[bi]
                t_ddp = self.max_over_ranks(self.phase(plain, popt, g, "ddp", None)[0])
                t_ns = self.max_over_ranks(self.phase(plain, popt, g, "nosync", None)[0])
                t_h, w, fl = self.phase(hk, hopt, g, "ddp", rec)
                t_h, w, fl = (self.max_over_ranks(v) for v in (t_h, w, fl))
                row = (t_ddp, t_ns, (t_ddp - t_ns) / t_ddp, t_h, w, w / t_h, fl)
                acc[bi].append(row)
                self.say("  %5d  %-8s  %9.1f  %9.1f  %7.1f%%  %9.1f  %9.1f  %7.1f%%  %9.1f" % (
                    r + 1, self.names[bi], row[0] * 1e3, row[1] * 1e3, row[2] * 100,
                    row[3] * 1e3, row[4] * 1e3, row[5] * 100, row[6] * 1e3))
        self.say("# mean over rounds")
        self.say(hdr)
        means = []
        for bi in (0, 1):
            m = [sum(c) / len(c) for c in zip(*acc[bi])]
            means.append(m)
            self.say("  %5s  %-8s  %9.1f  %9.1f  %7.1f%%  %9.1f  %9.1f  %7.1f%%  %9.1f" % (
                "mean", self.names[bi], m[0] * 1e3, m[1] * 1e3, m[2] * 100, m[3] * 1e3,
                m[4] * 1e3, m[5] * 100, m[6] * 1e3))
        self.say("# ddp step time %s / %s = %.3f (above 1: %s steps faster)" % (
            self.names[1], self.names[0], means[1][0] / means[0][0], self.names[0]))
        # The hooked copies only ever took synchronised steps: identical on every rank.
        bad = 0
        for bi in (0, 1):
            flat = torch.cat([p.detach().reshape(-1) for p in models[bi][1][0].parameters()])
            ref = flat.clone()
            self.dist.broadcast(ref, 0)
            diff = self.max_over_ranks(int((ref != flat).sum().item()))
            bad += diff > 0
            self.say("# %s: parameters identical on every rank: %s" % (
                self.names[bi], "yes" if diff == 0 else "NO (%d differ)" % diff))
        self.dist.barrier()
        for g in self.groups:
            self.dist.destroy_process_group(g)
        self.dist.destroy_process_group()
        return 1 if bad else 0


def main():
    argv = sys.argv[1:]
    a = parse_args(argv)
    if os.environ.get(tb.WORKER_ENV) or ("RANK" in os.environ and "WORLD_SIZE" in os.environ):
        if a.build:
            sys.path.insert(0, os.path.abspath(a.build) + "/python")
        return Rank(a).run()
    return tb.launch(a, argv, os.path.abspath(__file__))


if __name__ == "__main__":
    sys.exit(main())
