"""α-β-condition versus hidden width: a 3-layer MLP, the second hidden layer varied.

Islamov et al. (NeurIPS 2024, Fig. 4) train a 3-layer MLP on Fashion-MNIST with the second
layer's size from 32 to 4096 and find that the smallest feasible ``(α, β)`` rises up to
width ~512 and then falls. Default here: 1000 mnist1d samples, widths 32…1024, SGD; ``--full``: the
config's ``[full]`` table (use ``data = "fashion-mnist:DIR"`` for the paper's data).
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


@experiment("alphabeta_width")
def alphabeta_width(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """Sweep the second hidden layer's width; heatmaps and smallest pairs per width."""
    from lossgeometry import models

    c = merged_config(cfg, full)
    X, Y = load_data(c)
    d_in, classes = X.shape[1], int(Y.max()) + 1
    dtype = _DTYPES[c.get("dtype", "float32")]

    def setting(w: int) -> Setting:
        def make(seed: int) -> RunSpec:
            model = models.mlp(
                d_in,
                int(c.get("first_width", 128)),
                2,
                classes,
                activation=c.get("activation", "relu"),
                bottleneck=w,
                seed=seed,
            ).to(dtype)
            return RunSpec(
                cross_entropy_problem(model, X, Y),
                c.get("optimizer", "sgd"),
                int(c.get("steps", 400)),
                int(c.get("batch_size", 64)),
                float(c.get("lr", 0.1)),
            )

        return Setting(f"width_{w}", w, make)

    settings = [setting(int(w)) for w in c.get("widths", [32, 64, 128, 256, 512, 1024])]
    return run_sweep(
        "alphabeta_width",
        c,
        out,
        settings,
        xlabel="width of the second hidden layer",
        progress=progress,
    )
