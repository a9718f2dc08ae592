"""α-β-condition versus CNN channels: two conv layers, the second one's channels varied.

Islamov et al. (NeurIPS 2024, Fig. 5) vary the number of convolutions in the second layer of
a CNN on CIFAR-10. Default here: digits as ``1×8×8`` images; ``--full``: the ``[full]`` table
(``data = "cifar10:DIR"`` for the paper's data).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lossgeometry.app.experiments.alphabeta_common import (
    ClassifierSweep,
    MinibatchRuns,
    OneOptimizer,
    classifier_setting,
    load_data,
    run_sweep,
)
from lossgeometry.app.experiments.experiment import experiment
from lossgeometry.app.experiments.options import experiment_options

__all__ = ["AlphaBetaCNNConfig", "alphabeta_cnn"]


@dataclasses.dataclass(frozen=True)
class AlphaBetaCNNConfig(MinibatchRuns, OneOptimizer, ClassifierSweep):
    """The ``alphabeta_cnn`` experiment's TOML (besides the shared α-β sweep options)."""

    channels: tuple[int, ...] = (4, 8, 16, 32, 64)
    """Channels of the second conv layer (swept)."""
    first_channels: int = 8
    """Channels of the first conv layer (fixed)."""
    pool: str = "avg"
    """Pooling of the CNN."""


@experiment("alphabeta_cnn", options=AlphaBetaCNNConfig)
def alphabeta_cnn(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the second conv layer's channels; heatmaps and smallest pairs per setting."""
    from lossgeometry import models

    c = experiment_options(AlphaBetaCNNConfig, cfg, full)
    X, Y = load_data(c, images=True)
    classes = int(Y.max()) + 1

    def setting(ch: int):
        def build(seed: int):
            return models.cnn(
                X.shape[1],
                (c.first_channels, ch),
                3,
                classes,
                input_size=tuple(X.shape[2:]),
                activation=c.activation,
                pool=c.pool,
                seed=seed,
            )

        return classifier_setting(
            f"channels_{ch}",
            ch,
            build,
            c,
            X,
            Y,
            optimizer=c.optimizer,
            steps=c.steps,
            batch_size=c.batch_size,
            lr=c.lr,
        )

    settings = [setting(ch) for ch in c.channels]
    return run_sweep(
        "alphabeta_cnn",
        c,
        out,
        settings,
        xlabel="channels of the second conv layer",
        grid_field="channels",
        progress=progress,
    )
