"""α-β-condition versus batch size, at a fixed number of epochs.

Islamov et al. (NeurIPS 2024) train a ResNet on CIFAR-100 with several batch sizes and find
that the smallest feasible ``(α, β)`` shrink as the batch grows (less gradient noise). Default
here: an MLP on 1000 mnist1d samples, batch sizes 8…256, ``epochs`` fixed (steps = epochs·n/b).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lossgeometry.app.experiments.alphabeta_common import (
    _DTYPES,
    RunSpec,
    Setting,
    cross_entropy_problem,
    load_data,
    merged_config,
    run_sweep,
)
from lossgeometry.app.experiments.experiment import experiment


@experiment("alphabeta_batch")
def alphabeta_batch(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the batch size; the learning rate is kept fixed unless ``lr_scaling = "linear"``."""
    from lossgeometry import models

    c = merged_config(cfg, full)
    X, Y = load_data(c)
    n, d_in, classes = X.shape[0], X.shape[1], int(Y.max()) + 1
    dtype = _DTYPES[c.get("dtype", "float32")]
    epochs = float(c.get("epochs", 40))
    base_b = int(c.get("base_batch_size", 32))
    lr0 = float(c.get("lr", 0.1))
    scaling = c.get("lr_scaling", "none")
    if scaling not in ("none", "linear"):
        raise ValueError(f"lr_scaling must be 'none' or 'linear', got {scaling!r}")

    def setting(b: int) -> Setting:
        steps = max(1, math.ceil(epochs * n / b))
        lr = lr0 * b / base_b if scaling == "linear" else lr0

        def make(seed: int) -> RunSpec:
            model = models.mlp(
                d_in,
                int(c.get("width", 128)),
                int(c.get("depth", 2)),
                classes,
                activation=c.get("activation", "relu"),
                seed=seed,
            ).to(dtype)
            return RunSpec(
                cross_entropy_problem(model, X, Y), c.get("optimizer", "sgd"), steps, b, lr
            )

        return Setting(f"batch_{b}", b, make)

    settings = [setting(int(b)) for b in c.get("batch_sizes", [8, 16, 32, 64, 128, 256])]
    return run_sweep("alphabeta_batch", c, out, settings, xlabel="batch size", progress=progress)
