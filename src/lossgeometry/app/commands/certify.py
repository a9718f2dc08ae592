"""``lossgeometry certify``: a PL* certificate for a config's problem, optionally tested by GD.

It calls :func:`lossgeometry.conditions.plstar_study.plstar_study` (the study the report's PL*
section calls too) and renders its result; every default is a field default of
:class:`~lossgeometry.conditions.plstar_study.PLStarOptions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lossgeometry.app.commands._defaults import study_options, with_default
from lossgeometry.app.options import (
    ConfigOpt,
    ModelOpt,
    ProgressOpt,
    TimeoutOpt,
    TrustOpt,
    cli_errors,
    console,
    load_cli_config,
    say,
    show,
)
from lossgeometry.conditions.plstar_study import PLStarOptions as PO

DATA_PARALLEL = True
"""Whether :func:`~lossgeometry.conditions.plstar_study.plstar_study` runs on this rank's shard
under torchrun (the certificate's kernel, residuals and ‖D²F‖ are combined over the ranks)."""


@cli_errors
def certify_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    samples: Annotated[
        int | None,
        typer.Option(
            help=with_default("Random points per round in the ball B(w0, R).", PO, "samples")
        ),
    ] = None,
    radius: Annotated[
        float | None,
        typer.Option(help="Sample in this ball instead of the self-consistent radius R."),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            help=with_default(
                "How often the sampling radius may grow to the needed R.", PO, "max_rounds"
            )
        ),
    ] = None,
    trajectory_points: Annotated[
        int | None,
        typer.Option(
            help=with_default(
                "At most this many iterates of the training run are evaluated.",
                PO,
                "trajectory_points",
            )
        ),
    ] = None,
    hessian_restarts: Annotated[
        int | None,
        typer.Option(help=with_default("Random restarts of ‖D²F‖.", PO, "hessian_restarts")),
    ] = None,
    train: Annotated[
        bool,
        typer.Option(
            "--train/--no-train",
            help="Run the config's training first and evaluate its iterates too.",
        ),
    ] = False,
    gd_steps: Annotated[
        int | None,
        typer.Option(
            help=with_default(
                "When certified, run CertifiedGD this many steps and compare with the bound "
                "(0: no).",
                PO,
                "certified_gd_steps",
            )
        ),
    ] = None,
    sgd_batch: Annotated[
        int | None,
        typer.Option(help="Also compute the certified SGD step for this batch size."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the random directions (default: the config's seed)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="JSON file for the certificate and checks.")
    ] = Path("certificate.json"),
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Estimate µ = min λ_min(K), L_F and β_F in a ball around w0 and certify GD (PL*).

    Prints the constants, the radius R = 2·L_F·‖F(w0) − y‖/µ, the certified step
    1/(c(L_F² + β_F‖F(w0) − y‖)), the rate and a plain-words verdict. The extremes over the
    ball are sampled, so the certificate is an estimate, not a proof; it declines (and says
    why) when µ = 0 or the needed radius exceeds what was sampled.
    """
    from rich.table import Table

    from lossgeometry.app.launch import start
    from lossgeometry.conditions.plstar_sgd import sgd_step_size
    from lossgeometry.conditions.plstar_study import plstar_study
    from lossgeometry.results import atomic_write_json

    cfg = load_cli_config(config, model, trust=trust_config)
    opts = study_options(
        PO,
        samples=samples,
        radius=radius,
        max_rounds=rounds,
        trajectory_points=trajectory_points,
        hessian_restarts=hessian_restarts,
        certified_gd_steps=gd_steps,
        seed=int(cfg.get("seed", 0)) if seed is None else seed,
    )
    ranks = start(cfg.device, timeout)
    s = ranks.setup(cfg, do_train=train, progress=progress)
    pb = ranks.problem_for(s.problem, DATA_PARALLEL)
    study = plstar_study(pb, s.w0, trajectory=s.trajectory, options=opts, progress=progress)
    cert = study.certificate
    step = sgd_step_size(pb, cert, sgd_batch) if sgd_batch is not None and cert.mu > 0 else None
    if not ranks.is_main:  # rank 0 writes and prints
        return
    results: dict[str, Any] = {
        "problem": s.problem.summary(),
        "world_size": ranks.world_size,
        "options": opts.to_dict(),
        "certificate": cert.to_dict(),
        "summary": study.summary(),
    }
    table = Table(title=f"PL* certificate (p = {pb.p}, nk = {pb.n * pb.k}, {pb.reduction} MSE)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in cert.summary().items():
        table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    if study.training_run is not None:
        results["training_run"] = study.training_run.to_dict()
        table.add_row("training run: loss below bound", str(study.training_run.loss_holds))
    gd = study.certified_gd
    if gd is not None:
        results["certified_gd"] = gd.to_dict()
        table.add_row("CertifiedGD: final loss", f"{float(gd.observed[-1]):.6g}")
        table.add_row("CertifiedGD: loss below bound", str(gd.loss_holds))
        table.add_row("CertifiedGD: max distance / R", f"{gd.distance.max() / cert.radius:.3g}")
    elif opts.certified_gd_steps > 0:
        table.add_row("CertifiedGD", "not run (not certified)")
    if sgd_batch is not None:
        if step is not None:
            results["sgd_step"] = step.to_dict()
            table.add_row(f"SGD step η*(b={sgd_batch})", f"{step.step_size:.6g}")
            table.add_row("SGD rate (expected loss)", f"{step.rate:.6g}")
            table.add_row("critical batch size b*", f"{step.critical_batch_size:.4g}")
        else:
            table.add_row("SGD step", "none (µ = 0)")
    atomic_write_json(out, results)
    show(table, err=True)
    console.print(cert.verdict, style="green" if cert.certified else "yellow", markup=False)
    say(out, label="[bold green]results:[/]")
