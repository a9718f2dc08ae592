"""``lossgeometry hessian``: curvature of a configured problem from the command line.

It calls :func:`lossgeometry.curvature.profile.curvature_profile` at each point (the study the
report's curvature section calls too) and only renders its result; every default is a field
default of :class:`~lossgeometry.curvature.profile.CurvatureOptions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lossgeometry.app.commands._defaults import (
    refuse_former_flag,
    study_options,
    with_default,
)
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
from lossgeometry.curvature.profile import CurvatureOptions as CO

DATA_PARALLEL = True
"""Whether :func:`~lossgeometry.curvature.profile.curvature_profile` runs on this rank's shard
under torchrun (its Hessian products, trace, density and ‖D²F‖ all-reduce over the ranks)."""


@cli_errors
def hessian_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    point: Annotated[
        str, typer.Option(help="Where: 'init', 'trained' (trains the config first) or 'both'.")
    ] = "init",
    top: Annotated[
        int | None, typer.Option(help=with_default("Number of largest eigenvalues.", CO, "top"))
    ] = None,
    bottom: Annotated[
        int | None,
        typer.Option(
            help=with_default("Number of smallest (most negative) eigenvalues.", CO, "bottom")
        ),
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(help=with_default("Eigen-tolerance relative to ‖H‖.", CO, "tol")),
    ] = None,
    criterion: Annotated[
        str | None,
        typer.Option(
            help=with_default(
                "'eigenvalue' (tol bounds each eigenvalue's error) or 'residual' (tol bounds "
                "each eigenpair's residual: accurate eigenvectors, about twice the products).",
                CO,
                "criterion",
            )
        ),
    ] = None,
    solver: Annotated[
        str | None,
        typer.Option(
            help=with_default("Eigen-solver: auto, lanczos, arpack or dense.", CO, "solver")
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(hidden=True, help="Former name of --solver (refused).")
    ] = None,
    of: Annotated[
        str | None,
        typer.Option(help=with_default("'loss' (∇²L) or 'ggn' (Gauss–Newton part).", CO, "of")),
    ] = None,
    trace: Annotated[
        bool | None,
        typer.Option(
            "--trace/--no-trace", help=with_default("Estimate the trace (Hutch++).", CO, "trace")
        ),
    ] = None,
    density: Annotated[
        bool | None,
        typer.Option(
            "--density/--no-density",
            help=with_default("SLQ spectral density (writes a PNG).", CO, "density"),
        ),
    ] = None,
    bound: Annotated[
        bool | None,
        typer.Option(
            "--bound/--no-bound",
            help=with_default("Check λ_max ≤ c(L_F² + β_F‖F − y‖) (square loss).", CO, "bound"),
        ),
    ] = None,
    model_hessian: Annotated[
        bool | None,
        typer.Option(
            "--model-hessian/--no-model-hessian",
            help=with_default("Also ‖D²F‖ from random starts (any loss).", CO, "model_hessian"),
        ),
    ] = None,
    probes: Annotated[
        int | None, typer.Option(help=with_default("SLQ start vectors.", CO, "probes"))
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(help=with_default("SLQ Lanczos steps per start vector.", CO, "steps")),
    ] = None,
    trace_samples: Annotated[
        int | None,
        typer.Option(help=with_default("Hutch++ product budget.", CO, "trace_samples")),
    ] = None,
    restarts: Annotated[
        int | None,
        typer.Option(help=with_default("Random restarts of ‖D²F‖.", CO, "restarts")),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the random start vectors (default: the config's seed)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output directory (hessian.json, PNG).")
    ] = Path("hessian"),
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Both ends of the loss Hessian's spectrum, its trace and density (and ‖D²F‖)."""
    from rich.console import Console
    from rich.table import Table

    from lossgeometry.app.launch import start
    from lossgeometry.curvature.profile import curvature_profile
    from lossgeometry.results import atomic_write_json

    refuse_former_flag(method, "--method", "--solver")
    if criterion is not None and criterion not in ("eigenvalue", "residual"):
        raise ValueError(f"--criterion must be 'eigenvalue' or 'residual', got {criterion!r}")
    if point not in ("init", "trained", "both"):
        raise ValueError(f"--point must be 'init', 'trained' or 'both', got {point!r}")
    cfg = load_cli_config(config, model, trust=trust_config)
    opts = study_options(
        CO,
        top=top,
        bottom=bottom,
        tol=tol,
        criterion=criterion,
        solver=solver,
        of=of,
        trace=trace,
        density=density,
        bound=bound,
        model_hessian=model_hessian,
        probes=probes,
        steps=steps,
        trace_samples=trace_samples,
        restarts=restarts,
        seed=int(cfg.get("seed", 0)) if seed is None else seed,
    )
    ranks = start(cfg.device, timeout)
    ranks.on_main(lambda: out.mkdir(parents=True, exist_ok=True))
    s = ranks.setup(cfg, do_train=point != "init", progress=progress)
    points: dict[str, Any] = {}
    if point in ("init", "both"):
        points["init"] = s.w0
    if point in ("trained", "both"):
        assert s.trajectory is not None
        points["trained"] = s.trajectory.w_final
    problem = ranks.problem_for(s.problem, DATA_PARALLEL)
    profiles = {
        name: curvature_profile(problem, w, options=opts, progress=progress)
        for name, w in points.items()
    }
    if not ranks.is_main:  # rank 0 writes and prints
        return
    console = Console()
    summary: dict[str, Any] = {
        "problem": s.problem.summary(),
        "world_size": ranks.world_size,
        "options": opts.to_dict(),
        "points": {},
    }
    table = Table(title=f"Hessian of the loss ({opts.of}; reduction {s.problem.reduction!r})")
    for col in ("point", "λ_max", "λ_min", "trace (95% CI)", "‖D²F‖", "bound holds", "products"):
        table.add_column(col)
    notes: list[str] = []
    for name, prof in profiles.items():
        notes += prof.notes
        res: dict[str, Any] = {"spectrum": prof.spectrum.to_dict()}
        tr_txt = mh_txt = holds = "—"
        if prof.trace is not None:
            t = prof.trace
            res["trace"] = t.to_dict()
            tr_txt = f"{t.estimate:.4g} [{t.ci_low:.4g}, {t.ci_high:.4g}]"
        if prof.density is not None:
            res["density"] = prof.density.to_dict()
            ax = prof.density.plot()
            ax.set_title(f"spectral density at {name}")
            ax.figure.savefig(out / f"density_{name}.png", dpi=130, bbox_inches="tight")
            import matplotlib.pyplot as plt

            plt.close(ax.figure)
        if prof.bound is not None:
            res["bound"] = prof.bound.to_dict()
            holds = "yes" if prof.bound.holds else "NO"
            mh_txt = f"{prof.bound.beta:.4g}"
        if prof.model_hessian is not None:
            res["model_hessian_norm"] = prof.model_hessian.to_dict()
            mh_txt = f"{prof.model_hessian.norm:.4g}"
        res["summary"] = prof.summary()
        summary["points"][name] = res
        table.add_row(
            name,
            f"{prof.spectrum.lambda_max:.5g}",
            f"{prof.spectrum.lambda_min:.5g}",
            tr_txt,
            mh_txt,
            holds,
            str(prof.matvecs),
        )
    path = atomic_write_json(out / "hessian.json", summary)
    show(table)
    for note in dict.fromkeys(notes):
        say(note, label="[yellow]note:[/]", out=console)
    say(path, label="[bold green]written:[/]", out=console)
