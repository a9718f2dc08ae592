r"""The tangent-kernel study: spectra at one or two points and the relative change between them.

:func:`kernel_change` is the one function the CLI (``lossgeometry kernel``), the report's
kernel section and the experiments call; :class:`KernelChangeOptions` holds the only copy of
each of its defaults.

At each point ``w`` the kernel ``K(w) = DF(w) DF(w)ᵀ`` (order ``N = n·k``, or ``n`` with
``outputs="trace"``) is built densely when ``N ≤ max_size`` (all eigenvalues in float64,
:func:`~lossgeometry.kernel.spectrum.spectrum_from_kernel`); larger kernels get their extreme
eigenvalues matrix-free (:func:`~lossgeometry.kernel.spectrum.kernel_spectrum` with
``solver="lanczos"``). Between two dense points it measures

    ‖K(w1) − K(w0)‖_F / ‖K(w0)‖_F        (in the dtype of the kernels)

and, with ``spectral_norm=True``, the same ratio in spectral norm (float64). ``K`` lives on
the model outputs and does not depend on the loss reduction; for ``L = c·½‖F − Y‖²``
(``c = problem.loss_scale``) uniform conditioning gives the PL* constant
``µ = 2c·λ_min(K)`` (:meth:`KernelChange.pl_star_mu`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch

from lossgeometry.kernel.spectrum import (
    DENSE_THRESHOLD,
    KernelSpectrum,
    kernel_spectrum,
    spectrum_from_kernel,
)
from lossgeometry.kernel.tangent import tangent_kernel
from lossgeometry.options import Options, OptionsError, renamed_options
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = [
    "KernelChange",
    "KernelChangeOptions",
    "choose_solver",
    "kernel_change",
    "kernel_size",
]

Solver = Literal["auto", "dense", "lanczos", "arpack", "lobpcg"]


@renamed_options({"method": "solver", "k": "num_eigenvalues"})
@dataclasses.dataclass(frozen=True)
class KernelChangeOptions(Options):
    """Options of :func:`kernel_change` (``[report.kernel]``, ``lossgeometry kernel``)."""

    solver: Solver = "auto"
    """Eigen-solver: ``"auto"`` (dense when ``N ≤ max_size``, else ``"lanczos"`` if
    ``matrix_free``), ``"dense"``, or a matrix-free one (``"lanczos"``, ``"arpack"``,
    ``"lobpcg"``)."""
    kernel_method: Literal["auto", "structured", "jacobian", "ntvp"] = "auto"
    """How the dense kernel is built (:class:`~lossgeometry.kernel.KernelMethod`)."""
    outputs: Literal["full", "trace"] = "full"
    """``"full"``: all ``n·k`` outputs; ``"trace"``: summed over outputs (``n × n``, dense)."""
    max_size: int = DENSE_THRESHOLD
    """Largest kernel order ``N`` built densely by ``solver="auto"``."""
    matrix_free: bool = True
    """Let ``solver="auto"`` fall back to matrix-free Lanczos above ``max_size``."""
    num_eigenvalues: int = 1
    """Matrix-free: eigenvalues at each end of the spectrum."""
    tol: float = 1e-6
    """Matrix-free relative tolerance of each eigenvalue."""
    spectral_norm: bool = False
    """Also ``‖K(w1) − K(w0)‖₂ / ‖K(w0)‖₂`` (one more dense decomposition)."""
    seed: int = 0
    """Seed of the matrix-free start vectors."""

    def check(self) -> None:
        """Counts at least 1, ``tol`` positive, no matrix-free ``"trace"`` kernel."""
        if self.max_size < 1:
            raise OptionsError(f"max_size = {self.max_size}: must be at least 1")
        if self.num_eigenvalues < 1:
            raise OptionsError(f"num_eigenvalues = {self.num_eigenvalues}: must be at least 1")
        if not self.tol > 0:
            raise OptionsError(f"tol = {self.tol}: must be positive")
        if self.outputs == "trace" and self.solver not in ("auto", "dense"):
            raise OptionsError(
                f"outputs = 'trace' needs the dense kernel; solver = {self.solver!r} is "
                "matrix-free (use solver = 'auto' or 'dense')"
            )


def kernel_size(problem: Problem, outputs: str = "full") -> int:
    """The order ``N`` of the kernel: ``n·k`` (``outputs="full"``) or ``n`` (``"trace"``)."""
    return problem.n if outputs == "trace" else problem.n * problem.k


def choose_solver(size: int, options: KernelChangeOptions) -> str | None:
    """The solver :func:`kernel_change` uses for a kernel of order ``size``.

    ``"dense"`` or a matrix-free solver; ``None`` when ``solver="auto"`` finds the kernel
    larger than ``max_size`` and may not fall back (``matrix_free=False`` or
    ``outputs="trace"``).
    """
    if options.solver != "auto":
        return options.solver
    if size <= options.max_size:
        return "dense"
    if options.matrix_free and options.outputs == "full":
        return "lanczos"
    return None


@dataclasses.dataclass(frozen=True)
class KernelChange(Result):
    """Tangent-kernel spectra at ``w0`` (and ``w1``) and the relative change between them.

    Attributes:
        start: the spectrum of ``K(w0)``.
        end: the spectrum of ``K(w1)`` (``None`` for a single point).
        relative_change: ``‖K(w1) − K(w0)‖_F / ‖K(w0)‖_F`` (``nan`` unless both kernels
            were dense).
        relative_change_spectral: the same in spectral norm (``nan`` unless
            ``spectral_norm``).
        size: the kernel order ``N``.
        solver: ``"dense"`` or the matrix-free solver used.
        loss_scale: ``c`` with ``L = c·½‖F − Y‖²`` (``None`` for a loss other than MSE).
        plan: the structured rules' plan (dense kernels built by the structured method).
        options: the :class:`KernelChangeOptions` used, as a dict.
    """

    start: KernelSpectrum
    end: KernelSpectrum | None
    relative_change: float
    relative_change_spectral: float
    size: int
    solver: str
    loss_scale: float | None
    plan: dict[str, Any] | None
    options: dict[str, Any]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelChange:
        """Rebuild, including the nested spectra."""
        d = dict(d)
        for name in ("start", "end"):
            if isinstance(d.get(name), dict):
                d[name] = KernelSpectrum.from_dict(d[name])
        return super().from_dict(d)

    def pl_star_mu(self, at: Literal["start", "end"] = "start") -> float | None:
        """``µ = 2c·max(λ_min(K), 0)`` at ``w0`` (``"start"``) or ``w1``; ``None`` if not MSE."""
        spec = self.start if at == "start" else self.end
        if self.loss_scale is None or spec is None:
            return None
        return 2 * self.loss_scale * max(spec.lambda_min, 0.0)

    def summary(self) -> dict[str, Any]:
        """Headline scalars: λ_min, λ_max, κ and µ at each point, the relative change."""
        out: dict[str, Any] = {"size": self.size, "solver": self.solver}
        for tag, spec, at in (("w0", self.start, "start"), ("w1", self.end, "end")):
            if spec is None:
                continue
            out[f"lambda_min_{tag}"] = spec.lambda_min
            out[f"lambda_max_{tag}"] = spec.lambda_max
            out[f"condition_number_{tag}"] = spec.condition_number
            if self.loss_scale is not None:
                out[f"pl_star_mu_{tag}"] = self.pl_star_mu(at)  # type: ignore[arg-type]
        if self.end is not None:
            out["relative_change"] = self.relative_change
            if not math.isnan(self.relative_change_spectral):
                out["relative_change_spectral"] = self.relative_change_spectral
        return out

    def plot(self, ax: Any = None) -> Any:
        """Both spectra, eigenvalues in decreasing order on a log scale (returns the Axes)."""
        ax = self.start.plot(ax, label="w0")
        if self.end is not None:
            self.end.plot(ax, label="w1")
        return ax


def _spectrum(
    problem: Problem, w: torch.Tensor, solver: str, o: KernelChangeOptions, progress: bool | None
) -> tuple[KernelSpectrum, torch.Tensor | None]:
    if solver == "dense":
        K = tangent_kernel(problem, w, method=o.kernel_method, outputs=o.outputs, progress=progress)
        return spectrum_from_kernel(K, kernel_method=o.kernel_method, outputs=o.outputs), K
    spec = kernel_spectrum(
        problem,
        w,
        num_eigenvalues=o.num_eigenvalues,
        solver=solver,
        tol=o.tol,
        outputs=o.outputs,
        kernel_method=o.kernel_method,
        seed=o.seed,
        progress=progress,
    )
    return spec, None


def kernel_change(
    problem: Problem,
    w0: torch.Tensor,
    w1: torch.Tensor | None = None,
    *,
    options: KernelChangeOptions | None = None,
    progress: bool | None = None,
    return_kernels: bool = False,
) -> Any:
    r"""The tangent kernel's spectrum at ``w0`` (and ``w1``) and its relative change.

    Example (the kernel before and after 50 steps of gradient descent):
        >>> import torch
        >>> import lossgeometry as lg
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randn(8, 3, generator=g, dtype=torch.float64)
        >>> Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
        >>> problem = lg.Problem(lg.models.mlp(3, 16, 1, 2, seed=0).double(), X, Y)
        >>> run = lg.train(problem, "gd", 50, lr=0.02, progress=False)
        >>> ch = lg.kernel_change(problem, run.w0, run.w_final)
        >>> ch.size, ch.solver                                    # N = nk = 16: dense
        (16, 'dense')
        >>> 0 < ch.relative_change < 1, ch.start.lambda_min > 0
        (True, True)
        >>> s = ch.summary()
        >>> s["pl_star_mu_w0"] == 2 * problem.loss_scale * ch.start.lambda_min
        True

    Args:
        problem: the problem.
        w0: the first point (e.g. the initialization).
        w1: the second point (e.g. the trained one); ``None`` for the spectrum at ``w0`` only.
        options: :class:`KernelChangeOptions` (default: its defaults).
        progress: progress bars.
        return_kernels: also return the dense kernels ``{"start": K(w0), "end": K(w1)}``
            (empty when they were not built densely).

    Returns:
        A :class:`KernelChange`, or ``(KernelChange, kernels)`` with ``return_kernels``.

    Raises:
        ValueError: the kernel is larger than ``max_size`` and the matrix-free fallback is
            off, or a solver's own error (e.g. a dense kernel beyond the memory limit).
    """
    o = options if options is not None else KernelChangeOptions()
    N = kernel_size(problem, o.outputs)
    solver = choose_solver(N, o)
    if solver is None:
        raise ValueError(
            f"the kernel has order N = {N} > max_size = {o.max_size} and the matrix-free "
            "fallback is off: raise max_size or set matrix_free = true"
        )
    start, K0 = _spectrum(problem, w0, solver, o, progress)
    end, K1 = (None, None) if w1 is None else _spectrum(problem, w1, solver, o, progress)
    change = spectral = math.nan
    if K0 is not None and K1 is not None:
        change = float(torch.linalg.matrix_norm(K1 - K0) / torch.linalg.matrix_norm(K0))
        if o.spectral_norm:
            D = K1.to(torch.float64) - K0.to(torch.float64)
            spectral = float(
                torch.linalg.matrix_norm(D, ord=2)
                / torch.linalg.matrix_norm(K0.to(torch.float64), ord=2)
            )
    plan = None
    if solver == "dense" and o.kernel_method in ("auto", "structured"):
        from lossgeometry.kernel.structured import build_plan

        plan = build_plan(problem).describe()
    result = KernelChange(
        start=start,
        end=end,
        relative_change=change,
        relative_change_spectral=spectral,
        size=N,
        solver=solver,
        loss_scale=problem.loss_scale if problem.is_mse else None,
        plan=plan,
        options=o.to_dict(),
    )
    if return_kernels:
        kernels = {n: K for n, K in (("start", K0), ("end", K1)) if K is not None}
        return result, kernels
    return result
