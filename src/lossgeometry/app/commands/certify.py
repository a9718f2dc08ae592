"""``lossgeometry certify``: a PL* certificate for a config's problem, optionally tested by GD."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
def certify_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    samples: Annotated[int, typer.Option(help="Random points per round in the ball B(w0, R).")] = 8,
    radius: Annotated[
        float | None,
        typer.Option(help="Sample in this ball instead of the self-consistent radius R."),
    ] = None,
    rounds: Annotated[
        int, typer.Option(help="How often the sampling radius may grow to the needed R.")
    ] = 3,
    train: Annotated[
        bool,
        typer.Option(
            "--train/--no-train",
            help="Run the config's training first and evaluate its iterates too.",
        ),
    ] = False,
    gd_steps: Annotated[
        int,
        typer.Option(help="Run CertifiedGD this many steps and compare with the bound (0: no)."),
    ] = 0,
    sgd_batch: Annotated[
        int | None,
        typer.Option(help="Also compute the certified SGD step for this batch size."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random directions.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="JSON file for the certificate and checks.")
    ] = Path("certificate.json"),
    progress: ProgressOpt = None,
) -> None:
    """Estimate µ = min λ_min(K), L_F and β_F in a ball around w0 and certify GD (PL*).

    Prints the constants, the radius R = 2·L_F·‖F(w0) − y‖/µ, the certified step
    1/(c(L_F² + β_F‖F(w0) − y‖)), the rate and a plain-words verdict. The extremes over the
    ball are sampled, so the certificate is an estimate, not a proof; it declines (and says
    why) when µ = 0 or the needed radius exceeds what was sampled.
    """
    from rich.table import Table

    from lossgeometry.app.config import setup
    from lossgeometry.conditions.plstar import certify_plstar
    from lossgeometry.conditions.plstar_check import compare_with_certificate
    from lossgeometry.optim.certified_gd import run_certified_gd
    from lossgeometry.optim.sgd_step import sgd_step_size
    from lossgeometry.results import atomic_write_json

    cfg = load_cli_config(config, model)
    s = setup(cfg, do_train=train, progress=progress)
    pb = s.problem
    cert = certify_plstar(
        pb,
        s.w0,
        radius=radius,
        samples=samples,
        trajectory=s.trajectory,
        seed=seed,
        progress=progress,
        max_rounds=rounds,
    )
    results: dict[str, Any] = {"problem": pb.summary(), "certificate": cert.to_dict()}
    table = Table(title=f"PL* certificate (p = {pb.p}, nk = {pb.n * pb.k}, {pb.reduction} MSE)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in cert.summary().items():
        table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    if s.trajectory is not None and s.trajectory.lr is not None:
        check = compare_with_certificate(s.trajectory, cert)
        results["training_run"] = check.to_dict()
        table.add_row("training run: loss below bound", str(check.loss_holds))
    if gd_steps > 0:
        run = run_certified_gd(pb, cert, gd_steps, allow_uncertified=True, progress=progress)
        check = compare_with_certificate(run, cert)
        results["certified_gd"] = check.to_dict()
        table.add_row("CertifiedGD: final loss", f"{run.final_loss:.6g}")
        table.add_row("CertifiedGD: loss below bound", str(check.loss_holds))
        table.add_row("CertifiedGD: max distance / R", f"{run.distance.max() / cert.radius:.3g}")
    if sgd_batch is not None:
        if cert.mu > 0:
            step = sgd_step_size(pb, cert, sgd_batch)
            results["sgd_step"] = step.to_dict()
            table.add_row(f"SGD step η*(b={sgd_batch})", f"{step.step_size:.6g}")
            table.add_row("SGD rate (expected loss)", f"{step.rate:.6g}")
            table.add_row("critical batch size b*", f"{step.critical_batch_size:.4g}")
        else:
            table.add_row("SGD step", "none (µ = 0)")
    atomic_write_json(out, results)
    console.print(table)
    console.print(("[green]" if cert.certified else "[yellow]") + cert.verdict)
    console.print(f"[bold green]results:[/] {out}")
