"""α-β-condition along runs of different optimizers on the same model and data.

Islamov et al. (NeurIPS 2024) compare SGD, SGD with momentum and Adam. The bundled config
trains an MLP on 1000 mnist1d samples; the optimizers and their learning rates are a table in
the config (``[optimizers.NAME] optimizer = "...", lr = ...``), including lossgeometry's
SPS and NGN (``optimizer = "sps"`` etc., names of the optimizer registry, with their keyword
arguments in ``kwargs``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lossgeometry.app.experiments.alphabeta_common import (
    ClassifierSweep,
    MinibatchRuns,
    classifier_setting,
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
class AlphaBetaOptimizersConfig(MinibatchRuns, ClassifierSweep):
    """The ``alphabeta_optimizers`` experiment's TOML (besides the shared α-β sweep options)."""

    optimizers: dict[str, Any] = dataclasses.field(default_factory=_default_table)
    """One table per setting: ``optimizer`` (a name of the optimizer registry,
    :func:`lossgeometry.optim.optimizer_names`), ``lr``, ``kwargs``. A table in the TOML
    replaces this one."""
    width: int = 128
    """MLP hidden width."""
    depth: int = 2
    """Hidden layers."""


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

    def setting(label: str, spec: dict[str, Any]):
        def build(seed: int):
            return models.mlp(d_in, c.width, c.depth, classes, activation=c.activation, seed=seed)

        lr = spec.get("lr")
        return classifier_setting(
            label,
            label,
            build,
            c,
            X,
            Y,
            optimizer=spec.get("optimizer", "sgd"),
            steps=c.steps,
            batch_size=c.batch_size,
            lr=None if lr is None else float(lr),
            optimizer_kwargs=dict(spec.get("kwargs", {})) or None,
            key={"spec": spec},
        )

    settings = [setting(k, v) for k, v in table.items()]
    return run_sweep(
        "alphabeta_optimizers",
        c,
        out,
        settings,
        xlabel="optimizer",
        xlog=False,
        grid_field="optimizers",
        progress=progress,
    )
