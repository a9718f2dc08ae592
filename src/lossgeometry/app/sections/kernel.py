"""Report section: the tangent kernel at initialization and after training.

It calls :func:`lossgeometry.kernel.change.kernel_change` from ``w0`` to ``w_T`` and renders
the result. Options (``[report.kernel]``) are the fields of
:class:`~lossgeometry.kernel.change.KernelChangeOptions`, with their defaults there:
``max_size`` (largest ``N = n·k`` for the dense kernel; larger problems use matrix-free
Lanczos for ``λ_min``/``λ_max``, or are skipped with ``matrix_free = false``),
``matrix_free``, ``solver``, ``kernel_method``, ``outputs``, ``num_eigenvalues``, ``tol``,
``spectral_norm`` and ``seed`` (default: the config's seed).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section("kernel", title="Tangent kernel", order=30, data_parallel=True)
def kernel_section(ctx: Context) -> SectionOutput:
    """The tangent kernel K = DF DFᵀ at w0 and w_T: spectrum, conditioning, relative change."""
    import matplotlib.pyplot as plt

    from lossgeometry.kernel.change import (
        KernelChangeOptions,
        choose_solver,
        kernel_change,
        kernel_size,
    )

    opts = KernelChangeOptions.from_mapping(
        {"seed": ctx.seed, **ctx.options}, where="report.kernel"
    )
    pb = ctx.problem
    N = kernel_size(pb, opts.outputs)
    if choose_solver(N, opts) is None:
        return SectionOutput(
            results={"N": N},
            html="",
            skipped=(
                f"the kernel has order N = {N} > max_size = {opts.max_size} and the matrix-free "
                "fallback is off: raise [report.kernel] max_size or set matrix_free = true"
            ),
        )
    t0 = time.perf_counter()
    ch = kernel_change(pb, ctx.w0, ctx.w_trained, options=opts, progress=ctx.progress)
    seconds = time.perf_counter() - t0
    s0, sT = ch.start, ch.end
    assert sT is not None
    change = ch.relative_change
    results: dict[str, Any] = {
        "N": N,
        "normalization": "K = DF DF^T on the model outputs (independent of the loss reduction)",
        "init": s0.to_dict(),
        "trained": sT.to_dict(),
        "relative_change": change,
        "seconds": seconds,
    }
    if ch.plan is not None:
        results["plan"] = ch.plan
    if not math.isnan(ch.relative_change_spectral):
        results["relative_change_spectral"] = ch.relative_change_spectral
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
    if ch.loss_scale is not None:
        mu0 = ch.pl_star_mu("start")
        results["pl_star_mu_init"] = mu0
        results["pl_star_mu_trained"] = ch.pl_star_mu("end")
        metrics["µ = 2cλ_min (w0)"] = mu0
        mu_text = (
            f" With L = c·½‖F − y‖² (c = {html.fmt(ch.loss_scale)}), ‖∇L‖² ≥ 2c·λ_min(K)·L, so "
            "λ_min(K) bounds the PL ratio of the training section from below."
        )
    fig, ax = plt.subplots(figsize=(6, 3.8))
    s0.plot(ax, label="init w0")
    sT.plot(ax, label="trained w_T")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    text = (
        f"The tangent kernel K(w) = DF(w) DF(w)ᵀ ({N} × {N}; "
        f"{'summed over outputs' if opts.outputs == 'trace' else 'all outputs'}) is defined on "
        "the model outputs and does not depend on the loss reduction. Its smallest eigenvalue "
        "is the uniform-conditioning constant of the PL* theory; a small relative change "
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
    return SectionOutput(results=results, html=body, summary=ch.summary())
