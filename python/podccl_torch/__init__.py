"""podccl_torch: torch.distributed on podccl (CPU tensors).

    import podccl_torch                      # registers backend "podccl"
    torch.distributed.init_process_group("podccl", ...)

Any init_method works (env://, tcp://, file://, torchrun): group rank 0 puts a podccl unique id
into the c10d store, the others read it. dist.new_group(ranks, backend="podccl") gets its own
communicator the same way. See docs/pytorch.md.
"""
from datetime import timedelta

import torch  # noqa: F401  (loads libtorch before our extension)
import torch.distributed as dist

from ._C import ProcessGroupPodccl, podccl_version  # noqa: F401

__all__ = ["ProcessGroupPodccl", "podccl_version", "BACKEND_NAME"]

BACKEND_NAME = "podccl"


def _create(dist_backend_opts, pg_options=None):
    """c10d's extended creator: (DistributedBackendOptions, options) -> ProcessGroupPodccl."""
    if pg_options is not None:
        raise RuntimeError("podccl: process group options are not supported (got %r)" % (pg_options,))
    timeout = dist_backend_opts.timeout
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    return ProcessGroupPodccl(dist_backend_opts.store, dist_backend_opts.group_rank,
                              dist_backend_opts.group_size, seconds,
                              str(dist_backend_opts.group_id))


def _register():
    # Safe to import twice (and after a reload): register only once per interpreter.
    if BACKEND_NAME.upper() in getattr(dist.Backend, "_plugins", {}):
        return
    dist.Backend.register_backend(BACKEND_NAME, _create, extended_api=True)


_register()
