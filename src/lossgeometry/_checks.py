"""Input validation shared across lossgeometry: clear errors instead of NaNs or deep tracebacks.

Also the guards that let a check (or a measurement) run without leaving a trace on the user's
state: :func:`preserved_rng` restores the global random number generators afterwards.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

NamedModules = Sequence[tuple[str, nn.Module]]


def check_finite(
    t: torch.Tensor,
    name: str,
    *,
    offset: int = 0,
    indices: torch.Tensor | None = None,
    hint: str = "clean or impute the data before building a Problem",
) -> None:
    """Raise ``ValueError`` if a floating tensor holds NaN or Inf, naming where.

    The sample reported is ``offset + row`` (the row of ``t`` along its first dimension), or
    ``indices[row]`` when the rows are the samples ``indices`` of a data set.
    """
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            rows = torch.nonzero(bad.reshape(t.shape[0], -1).any(dim=1)).reshape(-1)
            first = int(rows[0])
            first = int(indices[first]) if indices is not None else offset + first
            raise ValueError(
                f"{name} contains NaN or Inf in {rows.numel()} sample(s) (first at index "
                f"{first}): {hint}"
            )


def check_class_indices(y: torch.Tensor, classes: int, where: str = "") -> None:
    """Raise ``ValueError`` unless every integer target lies in ``[0, classes)``.

    Cross-entropy indexes the ``classes`` outputs by the target; torch's own error for an
    index out of range (an ``IndexError`` deep in the loss) does not say which data are wrong.
    """
    if y.numel() == 0 or y.is_floating_point():
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= classes:
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}class indices must lie in [0, {classes - 1}] for a model with {classes} "
            f"outputs; got values in [{lo}, {hi}]"
        )


def mode_modules(model: nn.Module) -> tuple[NamedModules, NamedModules]:
    """The modules whose train mode changes the model function: ``(norms, random)``.

    ``norms``: BatchNorm and InstanceNorm layers. In train mode BatchNorm uses batch statistics
    (coupling the samples), and both update their running statistics when they track them.
    ``random``: dropout layers with ``p > 0`` and ``nn.MultiheadAttention`` with attention
    dropout: in train mode their outputs are random.
    """
    norms, rand = [], []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._NormBase):
            norms.append((name, mod))
        elif isinstance(mod, nn.modules.dropout._DropoutNd) and mod.p > 0:
            rand.append((name, mod))
        elif isinstance(mod, nn.MultiheadAttention) and float(mod.dropout) > 0:
            rand.append((name, mod))
    return norms, rand


def check_modes(
    norms: NamedModules, rand: NamedModules, allow_batchnorm: bool, allow_dropout: bool
) -> None:
    """Refuse train-mode BatchNorm (unless allowed) and active dropout (unless allowed)."""
    if not allow_batchnorm:
        for name, mod in norms:
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.training:
                raise ValueError(
                    f"BatchNorm layer {name!r} is in train mode: batch statistics "
                    "couple the samples, so per-sample quantities (kernel, per-sample losses) "
                    "are not well defined. Call model.eval() or pass allow_batchnorm=True "
                    "(lg.Monitor measures in eval mode and restores the model's mode)"
                )
    if not allow_dropout:
        for name, mod in rand:
            if not mod.training:
                continue
            if isinstance(mod, nn.MultiheadAttention):
                raise ValueError(
                    f"attention layer {name!r} has active dropout (p={mod.dropout}): call "
                    "model.eval() or pass allow_dropout=True"
                )
            raise ValueError(
                f"dropout layer {name!r} is active (train mode, p={mod.p}): outputs are random, "
                "so the loss is not a function of the parameters. Call model.eval() or pass "
                "allow_dropout=True"
            )


def check_model_deterministic(model: nn.Module, allow_batchnorm: bool, allow_dropout: bool) -> None:
    """Refuse models whose per-sample outputs are ill-defined (train-mode BatchNorm, dropout)."""
    check_modes(*mode_modules(model), allow_batchnorm, allow_dropout)


def check_same_outputs(first: torch.Tensor, second: torch.Tensor) -> None:
    """Refuse a model whose two forward passes at the same parameters differ.

    Catches randomness that no module flag shows (``F.dropout(x, p, self.training)``, noise
    added in ``forward``). Differences up to ``√ε`` of the output scale (``ε`` the machine
    epsilon: non-deterministic GPU reductions) are accepted.
    """
    if not (first.is_floating_point() or first.is_complex()) or first.shape != second.shape:
        return
    same = (first == second) | (torch.isnan(first) & torch.isnan(second))
    if bool(same.all()):
        return
    gap = torch.where(same, 0.0, (first - second).abs())  # NaN where only one pass gave NaN
    diff = float(gap.max()) if not bool(torch.isnan(gap).any()) else math.nan
    finite = torch.isfinite(first)
    scale = float(torch.where(finite, first.abs(), 0.0).max())
    tol = math.sqrt(torch.finfo(first.dtype).eps) * scale
    if math.isnan(diff) or diff > tol:
        raise ValueError(
            f"the model is random: two forward passes at the same parameters on "
            f"{first.shape[0]} samples differ (max difference {diff:.3g}, outputs up to "
            f"{scale:.3g}), so the loss is not a function of the parameters. Usually dropout "
            "applied in forward (F.dropout(x, p, self.training)) or noise in train mode: call "
            "model.eval(), or pass allow_dropout=True to measure the random model anyway"
        )


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block and restore the global random number generators afterwards.

    Restores torch's CPU generator, every initialized CUDA device's generator, NumPy's global
    generator and Python's ``random``: a check or measurement inside the block does not shift
    the random stream of the user's own loop.
    """
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global generator)
    py_state = random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
