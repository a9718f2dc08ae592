"""``lossgeometry manifold``: interpolate a config's problem and measure its manifold of minima."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossgeometry.app.options import (
    ConfigOpt,
    ModelOpt,
    ProgressOpt,
    cli_errors,
    console,
    load_cli_config,
)


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
        int,
        typer.Option(
            help="Study at most this many equations n·k (a seeded subset of samples) when "
            "the full problem is larger."
        ),
    ] = 100,
    samples: Annotated[
        int | None,
        typer.Option(help="Study exactly the first N samples (overrides --max-equations)."),
    ] = None,
    hessian: Annotated[
        str, typer.Option(help="Hessian nullity: auto, dense, randomized, lanczos or off.")
    ] = "auto",
    walk_steps: Annotated[int, typer.Option(help="Steps of the walk along the manifold.")] = 3,
    walk_step_size: Annotated[
        float | None, typer.Option(help="Walk step length (default 0.01·‖w*‖).")
    ] = None,
    tol: Annotated[float, typer.Option(help="Interpolation target ‖F − Y‖ < tol.")] = 1e-10,
    figure: Annotated[
        Path | None, typer.Option(help="Also save the 2×2 summary figure (PNG).")
    ] = None,
    progress: ProgressOpt = None,
) -> None:
    """Find a global minimum and measure the manifold of minima through it.

    Prints the rank of J = DF(w*), the dimension p − rank against p − nk, the Hessian
    nullity, loss-growth exponents, a walk along the manifold and negative curvature near w*;
    writes everything as JSON.
    """
    from rich.table import Table

    from lossgeometry.app.config import setup
    from lossgeometry.manifold.analysis import analyze_manifold
    from lossgeometry.results import atomic_write_json

    cfg = load_cli_config(config, model)
    s = setup(cfg, do_train=train, progress=progress)
    w = s.trajectory.w_final if (train and s.trajectory is not None) else s.w0
    if samples is not None and not 1 <= samples <= s.problem.n:
        raise ValueError(f"--samples must be between 1 and n = {s.problem.n}, got {samples}")
    hess: bool | str = False if hessian == "off" else hessian
    res = analyze_manifold(
        s.problem,
        w,
        max_equations=max_equations,
        samples=list(range(samples)) if samples is not None else None,
        seed=int(cfg.get("seed", 0)),
        tol=tol,
        hessian=hess,
        walk_steps=walk_steps,
        walk_step_size=walk_step_size,
        progress=progress,
    )
    d = res.to_dict()
    if isinstance(d.get("walk"), dict):
        d["walk"].pop("w_end", None)
    d["summary"] = res.summary()
    atomic_write_json(out, d)
    table = Table(title=f"manifold of minima ({s.dataset_name}, p = {res.p}, nk = {res.nk})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in res.summary().items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)
    for n in res.notes:
        console.print(f"[yellow]note:[/] {n}")
    if not res.success:
        console.print(f"[bold red]no interpolant:[/] {res.reason}")
    if figure is not None and res.success:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = res.plot()
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(figure, dpi=130, bbox_inches="tight")
        plt.close(fig)
        console.print(f"[bold green]figure:[/] {figure}")
    console.print(f"[bold green]results:[/] {out}")
