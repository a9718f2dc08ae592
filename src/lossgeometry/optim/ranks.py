r"""The loss a Polyak-type optimizer needs in a ``DistributedDataParallel`` loop.

SPS_max, DecSPS, NGN and AdaGrad-norm take one scalar step ``γ_k`` from the mini-batch loss
the closure returns and the squared norm of the gradient in ``.grad``. Under
``DistributedDataParallel`` each rank computes the loss ``f_r`` of its own part of the batch
and DDP averages the gradients, so ``.grad`` holds ``∇ (1/W) Σ_r f_r`` on every rank while
the closure's loss is the rank's own ``f_r``: every rank would take a different step and the
replicas would drift apart. The closure must return the loss whose gradient DDP computed,

.. math::
    f_B = \frac{1}{W} \sum_{r=0}^{W-1} f_r,

the same on every rank: :func:`mean_over_ranks`. (With each rank's loss scaled as
``f_r = (W/|B|) Σ_{i ∈ B_r} ℓ_i``, ``f_B`` is the mean of ``ℓ_i`` over the global batch.)
:func:`lossgeometry.train` needs none of this: its closure returns the loss summed over the
ranks by the data-parallel Problem.
"""

from __future__ import annotations

from typing import Any

import torch

from lossgeometry._collectives import collective

__all__ = ["mean_over_ranks"]


def mean_over_ranks(loss: torch.Tensor | float, group: Any = None) -> torch.Tensor:
    """``(1/W) Σ_r loss_r`` over the ranks of ``group`` (a detached tensor, on every rank).

    Return it from the closure of an SPS/NGN/AdaGrad-norm step in a
    ``DistributedDataParallel`` loop (module docstring)::

        def closure():
            opt.zero_grad()
            loss = loss_fn(ddp_model(x), y)
            loss.backward()                          # DDP averages the gradients
            return lg.optim.mean_over_ranks(loss)    # ... and this, the losses

    Without a process group (one process) it returns ``loss`` detached. Every rank of
    ``group`` (default: the default group) must call it.
    """
    t = torch.as_tensor(loss).detach()
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return t
    W = dist.get_world_size(group)
    if W == 1:
        return t
    out = t.clone().contiguous()
    collective(dist.all_reduce, out, op=dist.ReduceOp.SUM, group=group)
    return out / W
