"""α-β-condition versus CNN channels: two conv layers, the second one's channels varied.

Islamov et al. (NeurIPS 2024, Fig. 5) vary the number of convolutions in the second layer of
a CNN on CIFAR-10. Default here: digits as ``1×8×8`` images; ``--full``: the ``[full]`` table
(``data = "cifar10:DIR"`` for the paper's data).
"""

from __future__ import annotations

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


@experiment("alphabeta_cnn")
def alphabeta_cnn(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the second conv layer's channels; heatmaps and smallest pairs per setting."""
    from lossgeometry import models

    c = merged_config(cfg, full)
    X, Y = load_data(c, images=True)
    classes = int(Y.max()) + 1
    dtype = _DTYPES[c.get("dtype", "float32")]

    def setting(ch: int) -> Setting:
        def make(seed: int) -> RunSpec:
            model = models.cnn(
                X.shape[1],
                (int(c.get("first_channels", 8)), ch),
                3,
                classes,
                input_size=tuple(X.shape[2:]),
                activation=c.get("activation", "relu"),
                pool=c.get("pool", "avg"),
                seed=seed,
            ).to(dtype)
            return RunSpec(
                cross_entropy_problem(model, X, Y),
                c.get("optimizer", "sgd"),
                int(c.get("steps", 400)),
                int(c.get("batch_size", 64)),
                float(c.get("lr", 0.1)),
            )

        return Setting(f"channels_{ch}", ch, make)

    settings = [setting(int(ch)) for ch in c.get("channels", [4, 8, 16, 32, 64])]
    return run_sweep(
        "alphabeta_cnn",
        c,
        out,
        settings,
        xlabel="channels of the second conv layer",
        progress=progress,
    )
