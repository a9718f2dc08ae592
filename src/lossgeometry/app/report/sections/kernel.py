"""Report section: the tangent kernel at initialization and after training.

Options (``[report.kernel]``):

* ``max_size`` (default 4096): largest ``N = n·k`` for the dense kernel; larger problems use
  matrix-free Lanczos for ``λ_min``/``λ_max`` (set ``matrix_free = false`` to skip instead);
* ``matrix_free`` (default true): allow the matrix-free fallback;
* ``kernel_method`` (default ``"auto"``): ``structured``, ``jacobian`` or ``ntvp``;
* ``outputs`` (default ``"full"``): ``"full"`` or ``"trace"``;
* ``tol`` (default 1e-6): matrix-free tolerance.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from lossgeometry.app.report import html
from lossgeometry.app.report.section import Context, SectionOutput, section


@section("kernel", title="Tangent kernel", order=30)
def kernel_section(ctx: Context) -> SectionOutput:
    """The tangent kernel K = DF DFᵀ at w0 and w_T: spectrum, conditioning, relative change."""
    import matplotlib.pyplot as plt

    from lossgeometry.kernel.spectrum import kernel_spectrum, spectrum_from_kernel
    from lossgeometry.kernel.structured import build_plan
    from lossgeometry.kernel.tangent import tangent_kernel

    opts = dict(ctx.options)
    max_size = int(opts.pop("max_size", 4096))
    matrix_free = bool(opts.pop("matrix_free", True))
    kernel_method = str(opts.pop("kernel_method", "auto"))
    outputs = str(opts.pop("outputs", "full"))
    tol = float(opts.pop("tol", 1e-6))
    if opts:
        raise ValueError(
            f"unknown [report.kernel] options {sorted(opts)}; known: max_size, matrix_free, "
            "kernel_method, outputs, tol"
        )
    pb = ctx.problem
    N = pb.n if outputs == "trace" else pb.n * pb.k
    points = {"init": ctx.w0, "trained": ctx.w_trained}
    t0 = time.perf_counter()
    specs = {}
    change = math.nan
    if N <= max_size:
        kernels = {}
        for name, w in points.items():
            K = tangent_kernel(pb, w, method=kernel_method, outputs=outputs, progress=ctx.progress)
            specs[name] = spectrum_from_kernel(K, kernel_method=kernel_method, outputs=outputs)
            kernels[name] = K
        K0, KT = kernels["init"], kernels["trained"]
        change = float(torch.linalg.matrix_norm(KT - K0) / torch.linalg.matrix_norm(K0))
    elif matrix_free and outputs == "full":
        for name, w in points.items():
            specs[name] = kernel_spectrum(pb, w, method="lanczos", tol=tol, seed=ctx.seed)
    else:
        return SectionOutput(
            results={"N": N},
            html="",
            skipped=(
                f"the kernel has order N = {N} > max_size = {max_size} and the matrix-free "
                "fallback is off: raise [report.kernel] max_size or set matrix_free = true"
            ),
        )
    seconds = time.perf_counter() - t0
    s0, sT = specs["init"], specs["trained"]
    results: dict[str, Any] = {
        "N": N,
        "normalization": "K = DF DF^T on the model outputs (independent of the loss reduction)",
        "init": s0.to_dict(),
        "trained": sT.to_dict(),
        "relative_change": change,
        "seconds": seconds,
    }
    if kernel_method in ("auto", "structured") and s0.method == "dense":
        results["plan"] = build_plan(pb).describe()
    metrics = {
        "λ_min(K(w0))": s0.lambda_min,
        "λ_max(K(w0))": s0.lambda_max,
        "κ(K(w0))": s0.condition_number,
        "λ_min(K(w_T))": sT.lambda_min,
        "κ(K(w_T))": sT.condition_number,
    }
    if not math.isnan(change):
        metrics["relative change"] = change
    mu_text = ""
    if pb.is_mse:
        c = pb.loss_scale
        mu0 = 2 * c * max(s0.lambda_min, 0.0)
        results["pl_star_mu_init"] = mu0
        results["pl_star_mu_trained"] = 2 * c * max(sT.lambda_min, 0.0)
        metrics["µ = 2cλ_min (w0)"] = mu0
        mu_text = (
            f" With L = c·½‖F − y‖² (c = {html.fmt(c)}), ‖∇L‖² ≥ 2c·λ_min(K)·L, so λ_min(K) "
            "bounds the PL ratio of the training section from below."
        )
    fig, ax = plt.subplots(figsize=(6, 3.8))
    s0.plot(ax, label="init w0")
    sT.plot(ax, label="trained w_T")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    text = (
        f"The tangent kernel K(w) = DF(w) DF(w)ᵀ ({N} × {N}; "
        f"{'summed over outputs' if outputs == 'trace' else 'all outputs'}) is defined on the "
        "model outputs and does not depend on the loss reduction. Its smallest eigenvalue is "
        "the uniform-conditioning constant of the PL* theory; a small relative change "
        "‖K(w_T) − K(w0)‖_F/‖K(w0)‖_F means the model stayed close to its linearization "
        "(transition to linearity)." + mu_text
    )
    caption = (
        f"{s0.method} eigenvalues ({s0.kernel_method or 'ntvp'} kernel), {seconds:.1f} s"
        if s0.method == "dense"
        else f"extreme eigenvalues by {s0.method}: residuals "
        f"{html.fmt(float(np.max(s0.residual_norms)))}, {s0.matvecs} products"
    )
    body = html.metrics(metrics) + html.para(text) + ctx.figure(fig, "kernel_spectrum.png", caption)
    if s0.method != "dense" and not (s0.converged and sT.converged):
        body += html.note(
            "the matrix-free solver did not converge: the values are estimates", "warn"
        )
    return SectionOutput(results=results, html=body)
