"""α-β-condition along runs of different optimizers on the same model and data.

Islamov et al. (NeurIPS 2024) compare SGD, SGD with momentum and Adam. The bundled config
trains an MLP on 1000 mnist1d samples; the optimizers and their learning rates are a table in
the config (``[optimizers.NAME] optimizer = "...", lr = ...``), including lossgeometry's
``SPSMax`` and ``NGN`` (``optimizer = "SPSMax"`` etc. with their keyword arguments in
``kwargs``).
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

_DEFAULT = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "momentum": {"optimizer": "momentum", "lr": 0.02},
    "adam": {"optimizer": "adam", "lr": 0.001},
}


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


@experiment("alphabeta_optimizers")
def alphabeta_optimizers(
    cfg: dict[str, Any], out: Path, full: bool, progress: bool | None
) -> dict[str, Any]:
    """One setting per optimizer of ``[optimizers]``; heatmaps and smallest pairs."""
    from lossgeometry import models

    c = merged_config(cfg, full)
    X, Y = load_data(c)
    d_in, classes = X.shape[1], int(Y.max()) + 1
    dtype = _DTYPES[c.get("dtype", "float32")]
    table = c.get("optimizers", _DEFAULT)

    def setting(label: str, spec: dict[str, Any]) -> Setting:
        opt, lr, kw = _optimizer(spec)

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
                cross_entropy_problem(model, X, Y),
                opt,
                int(c.get("steps", 400)),
                int(c.get("batch_size", 64)),
                lr,
                kw,
            )

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
