"""The bundled experiments and their configs; ``run_experiment`` runs the one a TOML names.

Each experiment module registers itself with
:func:`lossgeometry.app.experiments.experiment.experiment` on import; this module imports
them all (one line each), so asking it what exists always sees every built-in experiment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossgeometry.app.experiments import (  # noqa: F401  (each registers itself)
    alphabeta_batch,
    alphabeta_cnn,
    alphabeta_halfspace,
    alphabeta_optimizers,
    alphabeta_width,
    kernel_change,
    manifold_dimension,
    overparameterization,
    width_sweep,
)
from lossgeometry.app.experiments.experiment import EXPERIMENTS, ExperimentFn


def available_experiments() -> dict[str, ExperimentFn]:
    """All registered experiments (importing the built-in ones)."""
    return dict(sorted(EXPERIMENTS.items()))


def bundled_configs() -> dict[str, Path]:
    """The TOML configs shipped with the package, by experiment name."""
    folder = Path(__file__).parent / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def run_experiment(
    config: str | Path,
    out: Path | None = None,
    full: bool = False,
    progress: bool | None = None,
    *,
    resume: bool = True,
) -> dict[str, Any]:
    """Run the experiment a TOML config names; ``config`` may be a path or a bundled name.

    The run owns ``out`` (default ``out/NAME``) while it goes: a second run into it is
    refused (:func:`lossgeometry.app.outdir.claim`). Grid points finished earlier with the
    same inputs are reused (``out/points/``); ``resume=False`` deletes them first.

    Raises:
        FileNotFoundError: no such file or bundled experiment.
        ValueError: bad TOML or options, an unknown experiment;
            :class:`~lossgeometry.app.outdir.OutputDirError` for an unusable ``out``.
        lossgeometry.app.outdir.OutputDirBusy: another run is writing into ``out``.
    """
    import shutil
    import sys

    from lossgeometry.app.outdir import claim

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    path = Path(config)
    if not path.is_file():
        bundled = bundled_configs()
        if str(config) in bundled:
            path = bundled[str(config)]
        else:
            raise FileNotFoundError(
                f"no config file {config!r}; bundled experiments: {sorted(bundled)}"
            )
    try:
        cfg = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML: {e}") from None
    name = cfg.get("experiment")
    exps = available_experiments()
    if name not in exps:
        raise ValueError(
            f"{path}: 'experiment = {name!r}' is not a known experiment; known: {sorted(exps)}"
        )
    target = Path(out) if out is not None else Path("out") / name
    with claim(target, f"run {name}") as out_dir:
        if not resume:
            shutil.rmtree(out_dir / "points", ignore_errors=True)
        return exps[name](cfg, out_dir, full, progress)
