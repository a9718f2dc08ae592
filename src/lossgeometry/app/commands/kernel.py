"""``lossgeometry kernel``: the tangent-kernel spectrum of a config's problem at init / trained.

It calls :func:`lossgeometry.kernel.change.kernel_change` (the study the report's kernel
section and the experiments call too) and only renders its result; every default is a field
default of :class:`~lossgeometry.kernel.change.KernelChangeOptions`.
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
    console,
    load_cli_config,
    say,
    show,
)
from lossgeometry.kernel.change import KernelChangeOptions as KO

DATA_PARALLEL = True
"""Whether :func:`~lossgeometry.kernel.change.kernel_change` runs on this rank's shard under
torchrun (each rank computes its rows of the kernel; every rank holds the whole kernel)."""


@cli_errors
def kernel_command(
    config: ConfigOpt = None,
    model: ModelOpt = None,
    at: Annotated[
        str,
        typer.Option(
            help="Where to measure: 'init' (no training), 'trained' (after the config's "
            "training) or 'both' (also reports the relative kernel change)."
        ),
    ] = "init",
    solver: Annotated[
        str | None,
        typer.Option(
            help=with_default("Eigen-solver: auto, dense, lanczos, arpack or lobpcg.", KO, "solver")
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(hidden=True, help="Former name of --solver (refused).")
    ] = None,
    kernel_method: Annotated[
        str | None,
        typer.Option(
            help=with_default(
                "Dense kernel method: auto, structured, jacobian or ntvp.", KO, "kernel_method"
            )
        ),
    ] = None,
    num_eigenvalues: Annotated[
        int | None,
        typer.Option(
            "--num-eigenvalues",
            "-k",
            help=with_default("Matrix-free: eigenvalues at each end.", KO, "num_eigenvalues"),
        ),
    ] = None,
    tol: Annotated[
        float | None, typer.Option(help=with_default("Matrix-free solver tolerance.", KO, "tol"))
    ] = None,
    outputs: Annotated[
        str | None,
        typer.Option(
            help=with_default("'full' (all outputs), 'trace' (summed over outputs).", KO, "outputs")
        ),
    ] = None,
    max_size: Annotated[
        int | None,
        typer.Option(
            help=with_default("Largest kernel order built densely by 'auto'.", KO, "max_size")
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the matrix-free start vectors (default: the config's seed)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the results.")] = Path(
        "kernel.json"
    ),
    save_kernel: Annotated[
        Path | None,
        typer.Option(help="Also save the dense kernel(s) as .npy (suffixed _init/_trained)."),
    ] = None,
    progress: ProgressOpt = None,
    trust_config: TrustOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Compute the tangent kernel K = DF DFᵀ and its spectrum (λ_min, λ_max, condition number).

    K is defined on the model outputs, independent of the loss reduction; the PL* constant
    implied by uniform conditioning is µ = 2·c·λ_min(K) with c the loss scale (1 for
    reduction 'sum', 2/(nk) for 'mean').
    """
    import numpy as np
    from rich.table import Table

    from lossgeometry.app.launch import start
    from lossgeometry.kernel.change import kernel_change
    from lossgeometry.results import atomic_write_json

    refuse_former_flag(method, "--method", "--solver")
    if at not in ("init", "trained", "both"):
        raise ValueError(f"--at must be 'init', 'trained' or 'both', got {at!r}")
    cfg = load_cli_config(config, model, trust=trust_config)
    opts = study_options(
        KO,
        solver=solver,
        kernel_method=kernel_method,
        num_eigenvalues=num_eigenvalues,
        tol=tol,
        outputs=outputs,
        max_size=max_size,
        seed=int(cfg.get("seed", 0)) if seed is None else seed,
    )
    ranks = start(cfg.device, timeout)
    s = ranks.setup(cfg, do_train=at != "init", progress=progress)
    pb = s.problem
    names = {"init": ["init"], "trained": ["trained"], "both": ["init", "trained"]}[at]
    w_of = {"init": s.w0}
    if at != "init":
        assert s.trajectory is not None and s.trajectory.w_final is not None
        w_of["trained"] = s.trajectory.w_final
    ch, kernels = kernel_change(
        ranks.problem_for(pb, DATA_PARALLEL),
        w_of[names[0]],
        w_of[names[1]] if len(names) == 2 else None,
        options=opts,
        progress=progress,
        return_kernels=True,
    )
    if save_kernel is not None and not kernels:
        raise ValueError(
            f"--save-kernel needs the dense kernel, but it was computed matrix-free by "
            f"{ch.solver!r} (N = {ch.size}): pass --solver dense or raise --max-size"
        )
    if not ranks.is_main:  # rank 0 writes and prints
        return
    specs = dict(zip(names, (ch.start, ch.end), strict=False))
    results: dict[str, Any] = {
        "problem": pb.summary(),
        "world_size": ranks.world_size,
        "normalization": "K = DF DF^T on the outputs (independent of the loss reduction)",
        "points": {n: sp.to_dict() for n, sp in specs.items()},
        "summary": ch.summary(),
    }
    if ch.loss_scale is not None:
        results["pl_star_mu"] = {
            n: ch.pl_star_mu(at) for n, at in zip(names, ("start", "end"), strict=False)
        }
    if ch.end is not None and not np.isnan(ch.relative_change):
        results["relative_change"] = ch.relative_change
    if ch.plan is not None:
        results["plan"] = ch.plan
    atomic_write_json(out, results)
    if save_kernel is not None:
        for name, K in zip(names, kernels.values(), strict=True):
            path = save_kernel.with_name(f"{save_kernel.stem}_{name}.npy")
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, K.cpu().numpy())
            say(f"kernel ({name}): {path}")

    table = Table(title=f"tangent kernel, N = {ch.size} (p = {pb.p})")
    for col in ("point", "λ_min", "λ_max", "κ", "solver", "seconds"):
        table.add_column(col)
    if ch.loss_scale is not None:
        table.add_column("µ = 2cλ_min")
    for name, sp in specs.items():
        row = [
            name,
            f"{sp.lambda_min:.6g}",
            f"{sp.lambda_max:.6g}",
            f"{sp.condition_number:.4g}",
            sp.method + ("" if sp.converged else " (not converged)"),
            f"{sp.seconds:.2f}",
        ]
        if ch.loss_scale is not None:
            row.append(f"{results['pl_star_mu'][name]:.6g}")
        table.add_row(*row)
    show(table, err=True)
    if "relative_change" in results:
        console.print(
            f"relative kernel change ‖K(w_T) − K(w_0)‖_F/‖K(w_0)‖_F = "
            f"{results['relative_change']:.4g}"
        )
    say(out, label="[bold green]results:[/]")
