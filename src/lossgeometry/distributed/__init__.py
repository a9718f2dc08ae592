"""Measurements over the ranks of a ``torch.distributed`` process group.

Launch with torchrun, as PyTorch users do::

    torchrun --nproc-per-node 2 my_script.py            # Python
    torchrun --nproc-per-node 2 -m lossgeometry analyze --config run.toml

and in the script::

    import lossgeometry as lg
    lg.distributed.init()                               # from torchrun's variables
    problem = lg.distributed.shard(lg.Problem(model, X, Y))   # each rank keeps its part
    spec = lg.hessian_spectrum(problem, num_eigenvalues=3)    # the same on every rank
    if lg.distributed.is_main():
        spec.save("hessian.json")                       # rank 0 writes

The data split, what runs data-parallel and the timeouts are in docs/distributed.md.
"""

from lossgeometry._collectives import DistributedError, ShardInfo, shard_bounds
from lossgeometry.distributed.group import (
    DEFAULT_TIMEOUT_S,
    barrier,
    default_backend,
    in_torchrun,
    init,
    is_initialized,
    is_main,
    rank,
    shutdown,
    world_size,
)
from lossgeometry.distributed.problem import data_parallel, gather, shard

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DistributedError",
    "ShardInfo",
    "barrier",
    "data_parallel",
    "default_backend",
    "gather",
    "in_torchrun",
    "init",
    "is_initialized",
    "is_main",
    "rank",
    "shard",
    "shard_bounds",
    "shutdown",
    "world_size",
]
