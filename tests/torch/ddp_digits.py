#!/usr/bin/python3
"""DistributedDataParallel training of a small CNN on scikit-learn's bundled digits data.

One process per rank. Trains deterministically (fixed seeds, deterministic algorithms, one
thread, DistributedSampler with a fixed seed, a fixed train/test split), then all-gathers every
rank's flattened parameters through the same backend and checks that they are bitwise identical on
every rank. Rank 0 prints one line

    ddp_digits: accuracy A (C/N) backend B world_size W epochs E steps S params P
        identical_on_all_ranks yes|no

and, with --save FILE, writes the final flattened parameters there (torch.save). With podccl, rank 0
also prints "ddp_digits: transport ..." (the backend's transport_info(): shm, ofi ...).

Rendezvous: --init-method (default env://, i.e. RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT as
torchrun sets them), or tcp://HOST:PORT with --rank and --world-size.

Exit codes: 0 success; 1 parameters differ between ranks (or bad use); 3 a RuntimeError from
torch.distributed, e.g. because a peer died (printed on one line: "ddp_digits: rank R caught
RuntimeError after T s: TEXT"); --kill-rank R makes rank R SIGKILL itself at step --kill-step.
"""

import argparse
import datetime
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="podccl", help="podccl (default) or gloo")
    p.add_argument("--init-method", default="env://", help="env:// (default) or tcp://HOST:PORT")
    p.add_argument("--rank", type=int, default=None, help="with tcp:// (env: RANK)")
    p.add_argument("--world-size", type=int, default=None, help="with tcp:// (env: WORLD_SIZE)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=32, help="per-rank batch size")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--timeout", type=float, default=60.0,
                   help="init_process_group timeout in seconds")
    p.add_argument("--save", default=None, help="rank 0 writes the final parameters here")
    p.add_argument("--kill-rank", type=int, default=-1,
                   help="this rank SIGKILLs itself at --kill-step (failure test)")
    p.add_argument("--kill-step", type=int, default=5, help="global step of --kill-rank's death")
    return p.parse_args()


def one_line(s):
    return " ".join(str(s).split())


def main():
    args = parse_args()
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    if args.backend == "podccl":
        import podccl_torch  # noqa: F401  (registers the backend)

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    kw = {}
    if args.rank is not None:
        kw["rank"] = args.rank
    if args.world_size is not None:
        kw["world_size"] = args.world_size
    rank = args.rank if args.rank is not None else int(os.environ.get("RANK", "-1"))
    t0 = time.time()
    try:
        dist.init_process_group(args.backend, init_method=args.init_method,
                                timeout=datetime.timedelta(seconds=args.timeout), **kw)
        rank = dist.get_rank()
        world = dist.get_world_size()
        if rank == 0:
            # podccl's transports (shm, ofi ...) as the backend reports them, when it does.
            info = getattr(dist.distributed_c10d._get_default_group(), "transport_info", None)
            if info is not None:
                print(f"ddp_digits: transport {one_line(info())}", flush=True)

        # Data: fixed split (a permutation from its own generator), pixels 0..16 scaled to 0..1.
        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(digits.target, dtype=torch.int64)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))
        ntest = 360
        xte, yte = x[perm[:ntest]], y[perm[:ntest]]
        xtr, ytr = x[perm[ntest:]], y[perm[ntest:]]
        train = TensorDataset(xtr, ytr)
        sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True,
                                     seed=args.seed, drop_last=False)
        loader = DataLoader(train, batch_size=args.batch, sampler=sampler, num_workers=0)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 16, 3, padding=1)   # 16 x 8 x 8
                self.conv2 = nn.Conv2d(16, 32, 3, padding=1)  # 32 x 8 x 8 -> pool 32 x 4 x 4
                self.fc1 = nn.Linear(32 * 4 * 4, 64)
                self.fc2 = nn.Linear(64, 10)

            def forward(self, t):
                t = F.relu(self.conv1(t))
                t = F.max_pool2d(F.relu(self.conv2(t)), 2)
                t = F.relu(self.fc1(t.flatten(1)))
                return self.fc2(t)

        # Same seed on every rank, and DDP broadcasts rank 0's parameters anyway.
        torch.manual_seed(args.seed)
        model = DDP(Net())
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        step = 0
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            model.train()
            for xb, yb in loader:
                if rank == args.kill_rank and step == args.kill_step:
                    print(f"ddp_digits: rank {rank} kills itself (SIGKILL) at step {step}",
                          flush=True)
                    os.kill(os.getpid(), 9)
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                step += 1

        # Every rank's parameters, gathered through the same backend, compared bit for bit.
        flat = torch.cat([p.detach().reshape(-1) for p in model.module.parameters()]).contiguous()
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        bits = flat.view(torch.int32)
        differ = [r for r in range(world) if not torch.equal(gathered[r].view(torch.int32), bits)]
        # Every rank also must agree that everyone matched (a flag all-reduced with MAX).
        bad = torch.tensor([1 if differ else 0], dtype=torch.int32)
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    except RuntimeError as e:
        print(f"ddp_digits: rank {rank} caught RuntimeError after {time.time() - t0:.1f} s: "
              f"{one_line(e)}", flush=True)
        # A normal exit, with the interpreter's teardown (the process group's destructor runs):
        # a program that caught the error must be able to end, so a hang here is a failure too.
        return 3

    if differ:
        print(f"ddp_digits: rank {rank}: parameters differ from rank(s) {differ}", flush=True)
    if rank == 0:
        model.eval()
        with torch.no_grad():
            pred = model.module(xte).argmax(1)
        correct = int((pred == yte).sum())
        print(f"ddp_digits: accuracy {correct / ntest:.4f} ({correct}/{ntest}) backend "
              f"{dist.get_backend()} world_size {world} epochs {args.epochs} steps {step} "
              f"params {flat.numel()} identical_on_all_ranks {'no' if int(bad) else 'yes'}",
              flush=True)
        if args.save:
            torch.save(flat, args.save)
    dist.barrier()
    dist.destroy_process_group()
    return 1 if int(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
