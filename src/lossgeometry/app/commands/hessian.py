"""``lossgeometry hessian``: curvature of a configured problem from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lossgeometry.app.options import ConfigOpt, ModelOpt, ProgressOpt, cli_errors, load_cli_config


@cli_errors
def hessian_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    point: Annotated[
        str, typer.Option(help="Where: 'init', 'trained' (trains the config first) or 'both'.")
    ] = "init",
    top: Annotated[int, typer.Option(help="Number of largest eigenvalues.")] = 5,
    bottom: Annotated[
        int, typer.Option(help="Number of smallest (most negative) eigenvalues.")
    ] = 5,
    tol: Annotated[
        float | None, typer.Option(help="Eigen-tolerance relative to ‖H‖ (default by dtype).")
    ] = None,
    criterion: Annotated[
        str,
        typer.Option(
            help="'eigenvalue' (tol bounds each eigenvalue's error) or 'residual' (tol bounds "
            "each eigenpair's residual: accurate eigenvectors, about twice the products)."
        ),
    ] = "eigenvalue",
    of: Annotated[str, typer.Option(help="'loss' (∇²L) or 'ggn' (Gauss–Newton part).")] = "loss",
    trace: Annotated[bool, typer.Option(help="Estimate the trace (Hutch++).")] = True,
    density: Annotated[bool, typer.Option(help="SLQ spectral density (writes a PNG).")] = True,
    model_hessian: Annotated[
        bool, typer.Option("--model-hessian/--no-model-hessian", help="‖D²F‖ and the bound check.")
    ] = False,
    probes: Annotated[int, typer.Option(help="SLQ start vectors.")] = 8,
    steps: Annotated[int, typer.Option(help="SLQ Lanczos steps per start vector.")] = 80,
    trace_samples: Annotated[int, typer.Option(help="Hutch++ product budget.")] = 99,
    seed: Annotated[int, typer.Option(help="Seed of the random start vectors.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (hessian.json, PNG).")
    ] = Path("hessian"),
    progress: ProgressOpt = None,
) -> None:
    """Both ends of the loss Hessian's spectrum, its trace and density (and ‖D²F‖)."""
    from rich.console import Console
    from rich.table import Table

    from lossgeometry.app.config import setup
    from lossgeometry.curvature import (
        hessian_bound,
        hessian_density,
        hessian_spectrum,
        hessian_trace,
        model_hessian_norm,
    )
    from lossgeometry.results import atomic_write_json

    if criterion not in ("eigenvalue", "residual"):
        raise ValueError(f"--criterion must be 'eigenvalue' or 'residual', got {criterion!r}")
    if point not in ("init", "trained", "both"):
        raise ValueError(f"--point must be 'init', 'trained' or 'both', got {point!r}")
    cfg = load_cli_config(config, model)
    s = setup(cfg, do_train=point != "init", progress=progress)
    points: dict[str, Any] = {}
    if point in ("init", "both"):
        points["init"] = s.w0
    if point in ("trained", "both"):
        assert s.trajectory is not None
        points["trained"] = s.trajectory.w_final
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"problem": s.problem.summary(), "points": {}}
    table = Table(title=f"Hessian of the loss ({of}; reduction {s.problem.reduction!r})")
    for col in ("point", "λ_max", "λ_min", "trace (95% CI)", "‖D²F‖", "bound holds", "products"):
        table.add_column(col)
    for name, w in points.items():
        res: dict[str, Any] = {}
        spec = hessian_spectrum(
            s.problem,
            w,
            top=top,
            bottom=bottom,
            tol=tol,
            of=of,
            seed=seed,
            progress=progress,
            criterion=criterion,  # type: ignore[arg-type]
        )
        res["spectrum"] = spec.to_dict()
        used = spec.matvecs
        tr_txt = mh_txt = holds = "—"
        if trace:
            t = hessian_trace(
                s.problem, w, samples=trace_samples, of=of, seed=seed, progress=progress
            )
            res["trace"] = t.to_dict()
            used += t.matvecs
            tr_txt = f"{t.estimate:.4g} [{t.ci_low:.4g}, {t.ci_high:.4g}]"
        if density:
            d = hessian_density(s.problem, w, probes, steps, of=of, seed=seed, progress=progress)
            res["density"] = d.to_dict()
            used += d.matvecs
            ax = d.plot()
            ax.set_title(f"spectral density at {name}")
            ax.figure.savefig(out / f"density_{name}.png", dpi=130, bbox_inches="tight")
            import matplotlib.pyplot as plt

            plt.close(ax.figure)
        if model_hessian:
            mh = model_hessian_norm(s.problem, w, seed=seed, progress=progress)
            res["model_hessian_norm"] = mh.to_dict()
            used += mh.matvecs
            mh_txt = f"{mh.norm:.4g}"
            if s.problem.is_mse:
                b = hessian_bound(s.problem, w, tol=tol, seed=seed, progress=progress)
                res["bound"] = b.to_dict()
                holds = "yes" if b.holds else "NO"
        summary["points"][name] = res
        table.add_row(
            name,
            f"{spec.lambda_max:.5g}",
            f"{spec.lambda_min:.5g}",
            tr_txt,
            mh_txt,
            holds,
            str(used),
        )
    path = atomic_write_json(out / "hessian.json", summary)
    console.print(table)
    console.print(f"[bold green]written:[/] {path}")
