"""α-β-condition versus batch size, at a fixed number of epochs.

Islamov et al. (NeurIPS 2024) train a ResNet on CIFAR-100 with several batch sizes and find
that the smallest feasible ``(α, β)`` shrink as the batch grows (less gradient noise). Default
here: an MLP on 1000 mnist1d samples, batch sizes 8…256, ``epochs`` fixed (steps = epochs·n/b).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Literal

from lossgeometry.app.experiments.alphabeta_common import (
    ClassifierSweep,
    OneOptimizer,
    classifier_setting,
    load_data,
    run_sweep,
)
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.options import experiment_options

__all__ = ["AlphaBetaBatchConfig", "alphabeta_batch"]


@dataclasses.dataclass(frozen=True)
class AlphaBetaBatchConfig(OneOptimizer, ClassifierSweep):
    """The ``alphabeta_batch`` experiment's TOML (besides the shared α-β sweep options)."""

    batch_sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    """The batch sizes swept."""
    epochs: float = 40.0
    """Epochs per run: ``steps = ⌈epochs · n / batch_size⌉``."""
    width: int = 128
    """MLP hidden width."""
    depth: int = 2
    """Hidden layers."""
    lr_scaling: Literal["none", "linear"] = "none"
    """``"linear"``: ``lr · batch_size / base_batch_size`` (``lr`` is the rate at
    ``base_batch_size``)."""
    base_batch_size: int = 32
    """The batch size ``lr`` refers to."""


@experiment("alphabeta_batch", options=AlphaBetaBatchConfig)
def alphabeta_batch(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the batch size; the learning rate is kept fixed unless ``lr_scaling = "linear"``."""
    from lossgeometry import models

    c = experiment_options(AlphaBetaBatchConfig, cfg, full)
    X, Y = load_data(c)
    n, d_in, classes = X.shape[0], X.shape[1], int(Y.max()) + 1

    def setting(b: int):
        def build(seed: int):
            return models.mlp(d_in, c.width, c.depth, classes, activation=c.activation, seed=seed)

        return classifier_setting(
            f"batch_{b}",
            b,
            build,
            c,
            X,
            Y,
            optimizer=c.optimizer,
            steps=max(1, math.ceil(c.epochs * n / b)),
            batch_size=b,
            lr=c.lr * b / c.base_batch_size if c.lr_scaling == "linear" else c.lr,
        )

    settings = [setting(b) for b in c.batch_sizes]
    return run_sweep(
        "alphabeta_batch",
        c,
        out,
        settings,
        xlabel="batch size",
        grid_field="batch_sizes",
        progress=progress,
    )
