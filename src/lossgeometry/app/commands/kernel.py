"""``lossgeometry kernel``: the tangent-kernel spectrum of a config's problem at init / trained."""

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
    method: Annotated[
        str, typer.Option(help="Spectrum method: auto, dense, lanczos, arpack or lobpcg.")
    ] = "auto",
    kernel_method: Annotated[
        str, typer.Option(help="Dense kernel method: auto, structured, jacobian or ntvp.")
    ] = "auto",
    k: Annotated[
        int | None, typer.Option("-k", help="Matrix-free: eigenvalues at each end.")
    ] = None,
    tol: Annotated[float, typer.Option(help="Matrix-free solver tolerance.")] = 1e-6,
    outputs: Annotated[
        str, typer.Option(help="'full' (all outputs), 'trace' (summed over outputs).")
    ] = "full",
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the results.")] = Path(
        "kernel.json"
    ),
    save_kernel: Annotated[
        Path | None,
        typer.Option(help="Also save the dense kernel(s) as .npy (suffixed _init/_trained)."),
    ] = None,
    progress: ProgressOpt = None,
) -> None:
    """Compute the tangent kernel K = DF DFᵀ and its spectrum (λ_min, λ_max, condition number).

    K is defined on the model outputs, independent of the loss reduction; the PL* constant
    implied by uniform conditioning is µ = 2·c·λ_min(K) with c the loss scale (1 for
    reduction 'sum', 2/(nk) for 'mean').
    """
    import numpy as np
    from rich.table import Table

    from lossgeometry.app.config import setup
    from lossgeometry.kernel.spectrum import kernel_spectrum, spectrum_from_kernel
    from lossgeometry.kernel.structured import build_plan
    from lossgeometry.kernel.tangent import tangent_kernel
    from lossgeometry.results import atomic_write_json

    if at not in ("init", "trained", "both"):
        raise ValueError(f"--at must be 'init', 'trained' or 'both', got {at!r}")
    cfg = load_cli_config(config, model)
    s = setup(cfg, do_train=at != "init", progress=progress)
    pb = s.problem
    points: dict[str, Any] = {"init": s.w0}
    if at != "init":
        assert s.trajectory is not None and s.trajectory.w_final is not None
        points = (
            {"trained": s.trajectory.w_final}
            if at == "trained"
            else {"init": s.w0, "trained": s.trajectory.w_final}
        )
    dense_needed = save_kernel is not None or at == "both"
    specs, kernels = {}, {}
    for name, w in points.items():
        if dense_needed and method in ("auto", "dense"):
            K = tangent_kernel(pb, w, method=kernel_method, outputs=outputs, progress=progress)
            specs[name] = spectrum_from_kernel(K, kernel_method=kernel_method, outputs=outputs)
            kernels[name] = K
        else:
            specs[name] = kernel_spectrum(
                pb,
                w,
                k=k,
                method=method,
                tol=tol,
                outputs=outputs,
                kernel_method=kernel_method,
                progress=progress,
            )
    results: dict[str, Any] = {
        "problem": pb.summary(),
        "normalization": "K = DF DF^T on the outputs (independent of the loss reduction)",
        "points": {n: sp.to_dict() for n, sp in specs.items()},
    }
    if pb.is_mse:
        c = pb.loss_scale
        results["pl_star_mu"] = {n: 2 * c * max(sp.lambda_min, 0.0) for n, sp in specs.items()}
    if len(kernels) == 2:
        K0, KT = kernels["init"], kernels["trained"]
        results["relative_change"] = float(
            np.linalg.norm((KT - K0).double().cpu().numpy())
            / np.linalg.norm(K0.double().cpu().numpy())
        )
    if kernel_method in ("auto", "structured"):
        results["plan"] = build_plan(pb).describe()
    atomic_write_json(out, results)
    if save_kernel is not None:
        for name, K in kernels.items():
            path = save_kernel.with_name(f"{save_kernel.stem}_{name}.npy")
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, K.cpu().numpy())
            console.print(f"kernel ({name}): {path}")

    table = Table(title=f"tangent kernel, N = {next(iter(specs.values())).size} (p = {pb.p})")
    for col in ("point", "λ_min", "λ_max", "κ", "method", "seconds"):
        table.add_column(col)
    if pb.is_mse:
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
        if pb.is_mse:
            row.append(f"{results['pl_star_mu'][name]:.6g}")
        table.add_row(*row)
    console.print(table)
    if "relative_change" in results:
        console.print(
            f"relative kernel change ‖K(w_T) − K(w_0)‖_F/‖K(w_0)‖_F = "
            f"{results['relative_change']:.4g}"
        )
    console.print(f"[bold green]results:[/] {out}")
