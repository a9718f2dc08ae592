"""``lossgeometry manifold``: interpolate a config's problem and measure its manifold of minima."""

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
    show,
)
from lossgeometry.manifold.options import ManifoldOptions as MO

DATA_PARALLEL = False
"""Whether :func:`~lossgeometry.manifold.analysis.analyze_manifold` runs on this rank's shard
under torchrun (``False``: on the whole Problem on every rank; manifold/ is one-process)."""


@cli_errors
def manifold_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the full result.")] = Path(
        "manifold.json"
    ),
    train: Annotated[
        bool,
        typer.Option(
            "--train/--no-train",
            help="Start Gauss-Newton from the trained point (default) or from the init.",
        ),
    ] = True,
    max_equations: Annotated[
        int | None,
        typer.Option(
            help=with_default(
                "Study at most this many equations n·k (a seeded subset of samples) when "
                "the full problem is larger.",
                MO,
                "max_equations",
            )
        ),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(help="Study exactly the first N samples (overrides --max-equations)."),
    ] = None,
    hessian: Annotated[
        str | None,
        typer.Option(
            help=with_default(
                "Hessian nullity: auto, dense, randomized, lanczos or off.", MO, "hessian"
            )
        ),
    ] = None,
    walk_steps: Annotated[
        int | None,
        typer.Option(help=with_default("Steps of the walk along the manifold.", MO, "walk_steps")),
    ] = None,
    walk_step_size: Annotated[
        float | None, typer.Option(help="Walk step length (default 0.01·‖w*‖).")
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(help=with_default("Interpolation target ‖F − Y‖ < tol.", MO, "tol")),
    ] = None,
    max_iter: Annotated[
        int | None,
        typer.Option(help=with_default("Gauss–Newton iterations.", MO, "max_iter")),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the subset and directions (default: the config's seed)."),
    ] = None,
    figure: Annotated[
        Path | None, typer.Option(help="Also save the 2×2 summary figure (PNG).")
    ] = None,
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Find a global minimum and measure the manifold of minima through it.

    Prints the rank of J = DF(w*), the dimension p − rank against p − nk, the Hessian
    nullity, loss-growth exponents, a walk along the manifold and negative curvature near w*;
    writes everything as JSON.
    """
    from rich.table import Table

    from lossgeometry.app.launch import start
    from lossgeometry.manifold.analysis import analyze_manifold
    from lossgeometry.results import atomic_write_json

    cfg = load_cli_config(config, model, trust=trust_config)
    opts = study_options(
        MO,
        max_equations=max_equations,
        hessian=False if hessian == "off" else hessian,
        walk_steps=walk_steps,
        walk_step_size=walk_step_size,
        tol=tol,
        max_iter=max_iter,
        seed=int(cfg.get("seed", 0)) if seed is None else seed,
    )
    ranks = start(cfg.device, timeout)
    s = ranks.setup(cfg, do_train=train, progress=progress)
    w = s.trajectory.w_final if (train and s.trajectory is not None) else s.w0
    if samples is not None and not 1 <= samples <= s.problem.n:
        raise ValueError(f"--samples must be between 1 and n = {s.problem.n}, got {samples}")
    res = analyze_manifold(
        ranks.problem_for(s.problem, DATA_PARALLEL),
        w,
        options=opts,
        samples=list(range(samples)) if samples is not None else None,
        progress=progress,
    )
    if not ranks.is_main:  # rank 0 writes and prints
        return
    d = res.to_dict()
    if isinstance(d.get("walk"), dict):
        d["walk"].pop("w_end", None)
    d["summary"] = res.summary()
    d["world_size"] = ranks.world_size
    atomic_write_json(out, d)
    table = Table(title=f"manifold of minima ({s.dataset_name}, p = {res.p}, nk = {res.nk})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in res.summary().items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    show(table, err=True)
    for n in res.notes:
        say(n, label="[yellow]note:[/]")
    if not res.success:
        say(res.reason, label="[bold red]no interpolant:[/]")
    if figure is not None and res.success:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = res.plot()
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(figure, dpi=130, bbox_inches="tight")
        plt.close(fig)
        say(figure, label="[bold green]figure:[/]")
    say(out, label="[bold green]results:[/]")
