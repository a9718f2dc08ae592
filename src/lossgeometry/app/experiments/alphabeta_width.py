"""α-β-condition versus hidden width: a 3-layer MLP, the second hidden layer varied.

Islamov et al. (NeurIPS 2024, Fig. 4) train a 3-layer MLP on Fashion-MNIST with the second
layer's size from 32 to 4096 and find that the smallest feasible ``(α, β)`` rises up to
width ~512 and then falls. Default here: 1000 mnist1d samples, widths 32…1024, SGD; ``--full``: the
config's ``[full]`` table (use ``data = "fashion-mnist:DIR"`` for the paper's data).
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

__all__ = ["AlphaBetaWidthConfig", "alphabeta_width"]


@dataclasses.dataclass(frozen=True)
class AlphaBetaWidthConfig(MinibatchRuns, OneOptimizer, ClassifierSweep):
    """The ``alphabeta_width`` experiment's TOML (besides the shared α-β sweep options)."""

    widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    """Widths of the second hidden layer (swept)."""
    first_width: int = 128
    """Width of the first hidden layer (fixed)."""


@experiment("alphabeta_width", options=AlphaBetaWidthConfig)
def alphabeta_width(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the second hidden layer's width; heatmaps and smallest pairs per width."""
    from lossgeometry import models

    c = experiment_options(AlphaBetaWidthConfig, cfg, full)
    X, Y = load_data(c)
    d_in, classes = X.shape[1], int(Y.max()) + 1

    def setting(w: int):
        def build(seed: int):
            return models.mlp(
                d_in, c.first_width, 2, classes, activation=c.activation, bottleneck=w, seed=seed
            )

        return classifier_setting(
            f"width_{w}",
            w,
            build,
            c,
            X,
            Y,
            optimizer=c.optimizer,
            steps=c.steps,
            batch_size=c.batch_size,
            lr=c.lr,
        )

    settings = [setting(w) for w in c.widths]
    return run_sweep(
        "alphabeta_width",
        c,
        out,
        settings,
        xlabel="width of the second hidden layer",
        grid_field="widths",
        progress=progress,
    )
