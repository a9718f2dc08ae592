"""A config turned into objects: the data, the model, the :class:`Problem`, the training run.

The model may come from a user's own factory: ``[model] factory = "package.module:function"``
or ``"path/to/file.py:function"`` (``--model`` on the command line). The factory is called
with the keyword arguments in ``[model.kwargs]`` plus, if it accepts them, ``d_in``,
``d_out`` and ``seed``, and returns either an ``nn.Module`` (data then come from ``[data]``)
or a tuple ``(model, X, Y)`` (its own data).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lossgeometry.app.config.base import resolve_device, resolve_dtype
from lossgeometry.app.config.factory import call_factory, load_factory
from lossgeometry.app.config.schema import AnalyzeConfig, as_config
from lossgeometry.app.config.tables import DataConfig, ModelConfig
from lossgeometry.curvature.stepsize import auto_lr
from lossgeometry.optim.registry import optimizer_takes_lr
from lossgeometry.problem import Problem
from lossgeometry.train import Trajectory, train

__all__ = ["Setup", "build_problem", "run_training", "setup"]

ConfigLike = AnalyzeConfig | Mapping[str, Any]
"""An :class:`AnalyzeConfig`, or a mapping with its keys (missing ones take the defaults)."""


@dataclass
class Setup:
    """A config turned into objects: the problem, the start point, and (optionally) the run."""

    config: AnalyzeConfig
    problem: Problem
    w0: torch.Tensor
    trajectory: Trajectory | None
    dataset_name: str


def _build_data(dcfg: DataConfig, loss_name: str, seed: int) -> tuple[Any, Any, Any]:
    from lossgeometry import data

    kwargs = dict(dcfg.options)
    if loss_name in ("cross_entropy", "nll"):  # class-index targets
        kwargs["one_hot"] = False
    elif "one_hot" not in kwargs:  # MSE on class labels: one-hot targets by default
        kwargs["one_hot"] = not str(dcfg.name).startswith("synthetic-regression")
    kwargs.setdefault("seed", seed)
    ds = data.load(dcfg.name, **kwargs)
    return ds, ds.X, ds.Y


def _build_factory_model(
    mcfg: ModelConfig, ds: Any, X: Any, Y: Any, seed: int, data_name: str
) -> tuple[nn.Module, Any, Any, str]:
    assert mcfg.factory is not None
    fn = load_factory(mcfg.factory)
    kwargs = dict(mcfg.kwargs or {})
    params = inspect.signature(fn).parameters
    for name, val in (("d_in", ds.d_in), ("d_out", ds.d_out), ("seed", seed)):
        if name in params and name not in kwargs and val is not None:
            kwargs[name] = val
    torch.manual_seed(seed)
    made = call_factory(mcfg.factory, fn, kwargs)
    if isinstance(made, tuple) and len(made) == 3:
        model, X, Y = made
        return model, X, Y, f"{mcfg.factory} (own data)"
    if isinstance(made, nn.Module):
        return made, X, Y, data_name
    raise TypeError(
        f"model factory {mcfg.factory!r} returned {type(made).__name__}; it must "
        "return an nn.Module or a tuple (model, X, Y)"
    )


def _build_builtin_model(mcfg: ModelConfig, ds: Any, X: Any, seed: int) -> tuple[nn.Module, Any]:
    from lossgeometry import models

    assert mcfg.name is not None
    kwargs = dict(mcfg.options)
    key = mcfg.builder_key
    if key == "mlp":
        if ds is not None and len(ds.input_shape) > 1:
            X = X.reshape(X.shape[0], -1)
        kwargs.setdefault("d_in", ds.d_in)
        kwargs.setdefault("d_out", ds.d_out)
    elif key in ("cnn", "resnet"):
        shape = ds.input_shape
        if len(shape) == 1:
            X = X.reshape(X.shape[0], 1, shape[0])
            shape = (1, shape[0])
            kwargs.setdefault("dim", 1)
        kwargs.setdefault("in_channels", shape[0])
        kwargs.setdefault("num_classes", ds.d_out)
        kwargs.setdefault("input_size", shape[1] if len(shape) == 2 else tuple(shape[1:]))
    kwargs.setdefault("seed", seed)
    return models.build(mcfg.name, **kwargs), X


def _device(name: str | None) -> torch.device | None:
    """The device of a config's ``device`` (``None`` when unset: the model stays where it is).

    ``"cuda"`` without an index is the current CUDA device (GPU ``LOCAL_RANK`` under
    torchrun).
    """
    if name is None:
        return None
    dev = resolve_device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device = {name!r}, but CUDA is not available here: use 'cpu'")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def build_problem(cfg: ConfigLike) -> tuple[Problem, str]:
    """Build the :class:`Problem` a config describes (model initialized with ``seed``).

    The model (and so the data the Problem holds) goes to the config's ``device``; unset, it
    stays where it was built (the CPU).

    Returns:
        The problem and the name of its data (the data set, or the factory's own data).
    """
    c = as_config(cfg)
    dtype = resolve_dtype(c.dtype)
    # data first: a factory that returns its own data simply ignores it
    ds, X, Y = _build_data(c.data, c.loss.name, c.seed)
    if c.model.is_factory:
        model, X, Y, name = _build_factory_model(c.model, ds, X, Y, c.seed, c.data.name)
    else:
        model, X = _build_builtin_model(c.model, ds, X, c.seed)
        name = c.data.name
    model = model.to(device=_device(c.device), dtype=dtype)
    problem = Problem(
        model, X, Y, loss=c.loss.name, reduction=c.loss.reduction, chunk_size=c.loss.chunk_size
    )
    return problem, name


def setup(cfg: ConfigLike, *, do_train: bool = True, progress: bool | None = None) -> Setup:
    """Build the problem of ``cfg`` and, if ``do_train``, run its training."""
    c = as_config(cfg)
    problem, name = build_problem(c)
    w0 = problem.params()
    traj = None
    if do_train:
        traj = run_training(problem, c, progress=progress)
    return Setup(c, problem, w0, traj, name)


def run_training(
    problem: Problem,
    cfg: ConfigLike,
    progress: bool | None = None,
    *,
    record_iterates: bool = False,
) -> Trajectory:
    """Run the ``[train]`` table of ``cfg`` on ``problem`` from its current parameters.

    ``record_iterates`` keeps ``w_t`` at every record (``lg.train``'s; for PCA planes).

    With ``lr_scale = "auto"`` the step is ``lr · auto_lr(problem, w0)``, i.e. ``lr`` in
    units of ``1/λ_max(∇²L(w0))``; with ``"none"`` it is ``lr``. An optimizer that sets its own
    step (``"certified_gd"``: the PL* certificate's) gets no ``lr``.
    """
    c = as_config(cfg)
    t = c.train
    w0 = problem.params()
    lr: float | None = t.lr
    if not optimizer_takes_lr(t.optimizer):
        lr = None
    elif t.lr_scale == "auto":
        lr = t.lr * auto_lr(problem, w0, seed=c.seed)
    return train(
        problem,
        t.optimizer,
        steps=t.steps,
        lr=lr,
        batch_size=t.batch_size or None,
        seed=c.seed,
        record_every=t.record_every,
        optimizer_kwargs=t.kwargs,
        progress=progress,
        record_iterates=record_iterates,
    )
