"""α-β-condition along runs of different optimizers on the same model and data.

Islamov et al. (NeurIPS 2024) compare SGD, SGD with momentum and Adam. The bundled config
trains an MLP on 1000 mnist1d samples; the optimizers and their learning rates are a table in
the config (``[optimizers.NAME] optimizer = "...", lr = ...``), including lossgeometry's
``SPSMax`` and ``NGN`` (``optimizer = "SPSMax"`` etc. with their keyword arguments in
``kwargs``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lossgeometry.app.experiments.alphabeta_common import (
    ClassifierSweep,
    RunSpec,
    Setting,
    cross_entropy_problem,
    load_data,
    run_sweep,
)
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.options import experiment_options

__all__ = ["AlphaBetaOptimizersConfig", "alphabeta_optimizers"]


def _default_table() -> dict[str, Any]:
    return {
        "sgd": {"optimizer": "sgd", "lr": 0.1},
        "momentum": {"optimizer": "momentum", "lr": 0.02},
        "adam": {"optimizer": "adam", "lr": 0.001},
    }


@dataclasses.dataclass(frozen=True)
class AlphaBetaOptimizersConfig(ClassifierSweep):
    """The ``alphabeta_optimizers`` experiment's TOML (besides the shared α-β sweep options)."""

    optimizers: dict[str, Any] = dataclasses.field(default_factory=_default_table)
    """One table per setting: ``optimizer`` (a :func:`lossgeometry.train` name or a class of
    :mod:`lossgeometry.optim`), ``lr``, ``kwargs``. A table in the TOML replaces this one."""
    width: int = 128
    """MLP hidden width."""
    depth: int = 2
    """Hidden layers."""
    activation: str = "relu"
    """Hidden activation."""
    steps: int = 400
    """Optimizer steps per run."""
    batch_size: int = 64
    """Mini-batch size."""


def _optimizer(spec: dict[str, Any]) -> tuple[Any, float | None, dict[str, Any] | None]:
    """A name of lg.train, or one of lossgeometry.optim's classes with its kwargs."""
    from lossgeometry import optim

    name = spec.get("optimizer", "sgd")
    kwargs = dict(spec.get("kwargs", {}))
    lr = spec.get("lr")
    cls = getattr(optim, str(name), None)
    if isinstance(cls, type):
        if lr is not None:
            kwargs["lr"] = float(lr)
        return (lambda ps: cls(ps, **kwargs)), None, None
    return name, None if lr is None else float(lr), kwargs or None


@experiment("alphabeta_optimizers", options=AlphaBetaOptimizersConfig)
def alphabeta_optimizers(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """One setting per optimizer of ``[optimizers]``; heatmaps and smallest pairs."""
    from lossgeometry import models

    c = experiment_options(AlphaBetaOptimizersConfig, cfg, full)
    X, Y = load_data(c)
    d_in, classes = X.shape[1], int(Y.max()) + 1
    table = c.optimizers

    def setting(label: str, spec: dict[str, Any]) -> Setting:
        opt, lr, kw = _optimizer(spec)

        def make(seed: int) -> RunSpec:
            model = models.mlp(
                d_in, c.width, c.depth, classes, activation=c.activation, seed=seed
            ).to(c.torch_dtype)
            return RunSpec(cross_entropy_problem(model, X, Y), opt, c.steps, c.batch_size, lr, kw)

        return Setting(label, label, make)

    settings = [setting(k, v) for k, v in table.items()]
    return run_sweep(
        "alphabeta_optimizers",
        c,
        out,
        settings,
        xlabel="optimizer",
        xlog=False,
        progress=progress,
    )
