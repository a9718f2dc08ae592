"""``lossgeometry surface``: the loss surface (2D) or a path (1D) of a configured problem.

It calls :func:`lossgeometry.surfaces.loss_surface` or :func:`~lossgeometry.surfaces.loss_path`
(the studies the report's surface section calls too) and only renders their Result: the JSON
(``surface.json`` / ``path.json``, reloadable with ``lg.load_result``) and PNGs (a contour
and a 3D surface, or the curve). Every default is a field default of
:class:`~lossgeometry.surfaces.SurfaceOptions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossgeometry.app.commands._defaults import study_options, with_default
from lossgeometry.app.options import (
    ConfigOpt,
    ModelOpt,
    ProgressOpt,
    TimeoutOpt,
    TrustOpt,
    cli_errors,
    load_cli_config,
    say,
)
from lossgeometry.surfaces.study import SurfaceOptions as SO

DATA_PARALLEL = True
"""Whether the surfaces run on this rank's shard under torchrun (each grid point's loss is
all-reduced). Only rank 0 reads and writes the row checkpoint of ``--kind surface``; on a
data-parallel Problem ``loss_surface`` sends rank 0's finished rows to every rank."""


def _pair(text: str | None, name: str) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{name} must be 'LO,HI' (two numbers), got {text!r}") from None
    return lo, hi


@cli_errors
def surface_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    kind: Annotated[
        str,
        typer.Option(
            help="'surface' (2D grid around the trained point), 'interpolation' (the line "
            "init → trained) or 'slice' (a line through the trained point along --directions)."
        ),
    ] = "surface",
    directions: Annotated[
        str | None,
        typer.Option(
            help=with_default(
                "random (filter-normalized), hessian, pca (surface; trains with iterates), "
                "gradient or hessian_bottom (slice).",
                SO,
                "directions",
            )
        ),
    ] = None,
    points: Annotated[
        int | None, typer.Option(help=with_default("Grid points per axis.", SO, "points"))
    ] = None,
    xrange: Annotated[
        str | None, typer.Option(help="LO,HI along the first direction (default: by direction).")
    ] = None,
    yrange: Annotated[
        str | None, typer.Option(help="LO,HI along the second direction (default: as xrange).")
    ] = None,
    accuracy: Annotated[
        bool | None,
        typer.Option(
            "--accuracy/--no-accuracy",
            help=with_default("Also the accuracy (cross-entropy).", SO, "accuracy"),
        ),
    ] = None,
    batch_points: Annotated[
        int | None,
        typer.Option(help=with_default("Grid points per vmapped pass.", SO, "batch_points")),
    ] = None,
    evaluation: Annotated[
        str | None,
        typer.Option(help=with_default("auto, vmap or chunks.", SO, "evaluation")),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the random directions (default: the config's seed)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--fresh",
            help="Reuse the finished rows of an interrupted surface (OUT/surface_rows.json).",
        ),
    ] = True,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (JSON and PNGs).")
    ] = Path("surface"),
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """The loss on a plane around the trained point, or on a line (interpolation, slice)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lossgeometry.app.launch import start
    from lossgeometry.surfaces import loss_path, loss_surface

    if kind not in ("surface", "interpolation", "slice"):
        raise ValueError(f"--kind must be 'surface', 'interpolation' or 'slice', got {kind!r}")
    cfg = load_cli_config(config, model, trust=trust_config)
    opts = study_options(
        SO,
        directions=directions,
        points=points,
        xrange=_pair(xrange, "--xrange"),
        yrange=_pair(yrange, "--yrange"),
        accuracy=accuracy,
        batch_points=batch_points,
        evaluation=evaluation,
        seed=int(cfg.get("seed", 0)) if seed is None else seed,
    )
    ranks = start(cfg.device, timeout)
    ranks.on_main(lambda: out.mkdir(parents=True, exist_ok=True))
    pca = kind == "surface" and opts.directions == "pca"  # the run's iterates span the plane
    s = ranks.setup(cfg, progress=progress, record_iterates=pca)
    traj = s.trajectory
    assert traj is not None
    problem = ranks.problem_for(s.problem, DATA_PARALLEL)
    written = []
    if kind == "surface":
        ck = out / "surface_rows.json" if ranks.is_main else None  # rank 0's own file
        if not resume and ck is not None:
            ck.unlink(missing_ok=True)
        res = loss_surface(
            problem,
            traj.w_final,
            options=opts,
            trajectory=traj,
            checkpoint=ck,
            progress=progress,
        )
        if not ranks.is_main:  # rank 0 writes and prints
            return
        written.append(res.save(out / "surface.json"))
        for plot_kind in ("contour", "surface3d"):
            ax = res.plot(kind=plot_kind, log=True)
            written.append(out / f"surface_{plot_kind}.png")
            ax.figure.savefig(written[-1], dpi=130, bbox_inches="tight")
            plt.close(ax.figure)
    else:
        if kind == "interpolation":
            res = loss_path(problem, s.w0, end=traj.w_final, options=opts, progress=progress)
        else:
            res = loss_path(problem, traj.w_final, options=opts, progress=progress)
        if not ranks.is_main:  # rank 0 writes and prints
            return
        written.append(res.save(out / "path.json"))
        ax = res.plot(log=True)
        written.append(out / "path.png")
        ax.figure.savefig(written[-1], dpi=130, bbox_inches="tight")
        plt.close(ax.figure)
    for key, value in res.summary().items():
        say(value, label=f"{key}:")
    for path in written:
        say(path, label="[bold green]written:[/]")
