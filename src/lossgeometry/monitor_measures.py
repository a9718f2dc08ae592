"""The named measurements a :class:`~lossgeometry.Monitor` can take at each record.

Each is a function of the (probe) Problem and the point ``w_t``, computed by the library's
own measurement functions with their documented normalization:

========================  ==================================================================
name                      value at a record (the Problem's loss normalization)
========================  ==================================================================
``"hessian_max"``         ``λ_max(∇²L(w_t))`` (:func:`~lossgeometry.hessian_spectrum`, top 1)
``"kernel_min"``          ``λ_min(K(w_t))``, ``K = DF DFᵀ`` (:func:`~lossgeometry.kernel_spectrum`)
``"kernel_cond"``         ``κ(K(w_t)) = λ_max(K) / λ_min(K)`` (same spectrum, computed once)
``"aiming_angle"``        ``∠(∇L(w_t), w_t − w_ref)`` in degrees (Aiming needs ``< 90°``);
                          ``w_ref`` is the Monitor's ``aiming_reference`` (online), or the
                          run's last record (filled in at :meth:`Monitor.close`, the proxy of
                          :mod:`lossgeometry.conditions.aiming`)
``"hessian_density"``     the eigenvalue density of ``∇²L(w_t)`` (SLQ,
                          :func:`~lossgeometry.hessian_density`) as a histogram: bucket
                          counts ``p · Σ τ / probes`` of the quadrature nodes ``θ`` in each
                          bucket, so the counts add up to ``p`` (an estimated eigenvalue count)
========================  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lossgeometry.curvature.density import hessian_density
from lossgeometry.curvature.spectrum import hessian_spectrum
from lossgeometry.kernel.spectrum import kernel_spectrum
from lossgeometry.problem import Problem

__all__ = ["HISTOGRAMS", "MEASURES", "SCALARS", "Histogram", "aiming_angle", "histogram_of"]

SCALARS = ("hessian_max", "kernel_min", "kernel_cond", "aiming_angle")
"""The scalar measurements, recorded beside loss, gradient norm, distance and PL ratio."""
HISTOGRAMS = ("hessian_density",)
"""The histogram measurements."""
MEASURES = SCALARS + HISTOGRAMS


@dataclass(frozen=True)
class Histogram:
    """A histogram of one record: ``counts[j]`` in ``[edges[j], edges[j + 1])``."""

    edges: np.ndarray
    counts: np.ndarray


def aiming_angle(grad: torch.Tensor, w: torch.Tensor, w_ref: torch.Tensor) -> float:
    """``∠(∇L(w), w − w_ref)`` in degrees, in ``[0, 180]``; ``nan`` if either vector is 0."""
    d = w - w_ref
    den = float(grad.norm() * d.norm())
    if den == 0.0:
        return math.nan
    cos = max(-1.0, min(1.0, float(grad @ d) / den))
    return math.degrees(math.acos(cos))


class _KernelSpectrumOnce:
    """``kernel_spectrum(problem, w)`` computed once per point and shared by two scalars."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._w: torch.Tensor | None = None  # held, so that ``is`` cannot match a new tensor
        self._value: tuple[float, float] = (math.nan, math.nan)

    def __call__(self, problem: Problem, w: torch.Tensor) -> tuple[float, float]:
        if w is not self._w:
            spec = kernel_spectrum(problem, w, seed=self.seed, progress=False)
            self._w, self._value = w, (spec.lambda_min, spec.condition_number)
        return self._value


def scalar_measures(
    names: Sequence[str], *, seed: int = 0
) -> dict[str, Callable[[Problem, torch.Tensor], float]]:
    """The scalar measurements ``{name: fn(problem, w)}`` named in ``names`` (not Aiming)."""
    kernel = _KernelSpectrumOnce(seed)
    table: dict[str, Callable[[Problem, torch.Tensor], float]] = {
        "hessian_max": lambda p, w: float(
            hessian_spectrum(p, w, top=1, bottom=0, seed=seed).top[0]
        ),
        "kernel_min": lambda p, w: kernel(p, w)[0],
        "kernel_cond": lambda p, w: kernel(p, w)[1],
    }
    return {n: table[n] for n in names if n in table}


def histogram_of(
    problem: Problem,
    w: torch.Tensor,
    *,
    bins: int = 50,
    probes: int = 4,
    steps: int = 30,
    seed: int = 0,
) -> Histogram:
    """The Hessian eigenvalue density at ``w`` as a :class:`Histogram` (module docstring)."""
    dens = hessian_density(problem, w, probes=probes, steps=steps, seed=seed, progress=False)
    nodes = np.asarray(dens.nodes, dtype=float).ravel()
    weights = np.asarray(dens.weights, dtype=float).ravel() * problem.p / dens.probes
    lo, hi = float(nodes.min()), float(nodes.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(nodes, bins=bins, range=(lo, hi), weights=weights)
    return Histogram(edges=edges, counts=counts)


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, each a known measurement (else a ``ValueError`` naming them)."""
    if isinstance(names, str):
        names = (names,)
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measurements {unknown}: choose from {list(MEASURES)}")
    return tuple(names)
