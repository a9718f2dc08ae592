r"""The cost model behind ``tangent_kernel(method="auto")``: predicted seconds of each route.

``auto`` estimates, for the request at hand (``m`` samples, ``ks`` outputs per sample, the
kernel mode), how long the ``structured`` and the ``jacobian`` routes would take, and takes
the cheaper; ``ntvp`` only when neither fits in memory (one sample's factors exceed the
budget). Each route is a sum of terms ``flops / rate + bytes / bandwidth``:

* a **layer pass** (forward, or backward of activations) costs ``F`` flops per sample, with
  ``F = Σ_layers 2 G S d_A d_B`` (``G`` groups, ``S`` positions, ``d_A`` inputs plus bias,
  ``d_B`` outputs of each layer with a rule; ``2·p`` for parameters without one), at the
  calibrated rate of a layer pass (a small convolution's forward and backward); the weight
  gradients that the Jacobian route's backward forms are charged at that rate too;
* the **structured** route: a forward and ``ks`` backward passes to the probes,
  ``m (1 + ks) F``; per layer, its route from the plan (:mod:`~lossgeometry.kernel.structured`):

  - Gram with one position (dense layers on vectors): GEMMs of ``pairs · (d_A + ks² d_B)``
    multiply-adds (``pairs`` = sample pairs of the requested blocks);
  - Gram with ``S > 1`` positions: the flop count of
    :func:`~lossgeometry.kernel.rules.base.bilinear_costs` times its penalty, at the GEMM rate;
  - materialized: the per-sample gradient, ``m ks G S d_A d_B`` multiply-adds (batched small
    products) and ``m ks G d_A d_B`` elements written, then ``pairs · ks² · G d_A d_B`` in one
    GEMM;

  and for parameters without a rule (``p_fb`` of them) a ``vmap(jacrev)`` of those only, which
  still runs a forward and ``ks`` backward passes through the whole network,
  ``m (1 + ks) F``, plus ``pairs · ks² · p_fb`` in the GEMM;
* the **jacobian** route: a forward and ``ks`` backward passes that also form the weight
  gradients, ``m (1 + 2 ks) F``; ``m ks p`` elements written; ``pairs · ks² · p`` in the GEMM.

``pairs`` is ``m²`` for the full kernel or its trace, ``m`` for ``diagonal_only``; the
contraction ``P Pᵀ`` of the full kernel is formed from its lower block triangle, a fraction
``(c + 1) / (2c)`` of it with ``c`` row blocks (:func:`_pairs`); the trace modes replace
``ks²`` by ``ks`` in the contractions.

The rates come from a per-machine **calibration** (:mod:`~lossgeometry.kernel.calibration`:
a large float32 GEMM, batched small products, a layer pass, a large copy, the dispatch time;
measured once
and cached on disk).

The model only has to rank the routes. ``jacobian`` is taken when it is predicted at least
:data:`MARGIN` times cheaper, so that near-ties (convolutional nets, where both routes do the
same passes) keep the structured kernel.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch

from lossgeometry.kernel.calibration import (
    Calibration,
    calibrate,
    calibration,
    set_calibration,
)
from lossgeometry.problem import Problem

__all__ = [
    "MARGIN",
    "Calibration",
    "Work",
    "calibrate",
    "calibration",
    "choose_method",
    "estimate",
    "forward_flops",
    "jacobian_work",
    "set_calibration",
    "structured_work",
]

MARGIN: float = 1.05
"""``jacobian`` must be predicted this many times faster than ``structured`` to be chosen."""


# --------------------------------------------------------------------------- route costs
@dataclasses.dataclass(frozen=True)
class Work:
    """Work of one route: flops by kind and bytes moved; :meth:`seconds` under a calibration."""

    gemm_flops: float = 0.0
    batched_flops: float = 0.0
    bytes: float = 0.0
    ops: float = 0.0
    layer_flops: float = 0.0

    def __add__(self, other: Work) -> Work:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return Work(*(a + b for a, b in pairs))

    @property
    def flops(self) -> float:
        """All floating-point operations counted (multiply and add separately)."""
        return self.gemm_flops + self.batched_flops + self.layer_flops

    def seconds(self, cal: Calibration) -> float:
        """Predicted time: ``Σ flops/rate + bytes/bandwidth + ops·overhead``."""
        return (
            self.gemm_flops / cal.gemm
            + self.batched_flops / cal.batched
            + self.layer_flops / cal.layer
            + self.bytes / cal.bandwidth
            + self.ops * cal.overhead
        )


def _pairs(m: int, ks: int, diagonal_only: bool, trace: bool) -> tuple[float, float]:
    """Sample pairs of the blocks formed: ``(all, with the symmetric product)``.

    The full kernel's ``P Pᵀ`` is formed from ``c (c + 1) / 2`` of ``c²`` row blocks
    (:func:`~lossgeometry.kernel.rules.base.symmetric_product`); the trace and the Gram
    layers form every pair.
    """
    from lossgeometry.kernel.rules.base import SYMMETRIC_BLOCK

    if diagonal_only:
        return float(m), float(m)
    N = m * ks
    if trace or N < 2 * SYMMETRIC_BLOCK:
        return float(m * m), float(m * m)
    c = math.ceil(N / max(SYMMETRIC_BLOCK, -(-N // 8)))
    return float(m * m), m * m * (c + 1) / (2.0 * c)


def _passes(plan: Any, m: int, ks: int, F: float, item: int) -> Work:
    """A forward and ``ks`` backward passes (activation gradients only) over ``m`` samples."""
    act = plan.activation_elements
    return Work(layer_flops=m * (1 + ks) * F, bytes=m * (1 + 2 * ks) * act * item)


def forward_flops(plan: Any) -> float:
    """Per-sample forward flops ``F`` of a plan's layers (``2·p_fb`` for the fallback)."""
    F = 0.0
    for e in plan.entries:
        G, S, dA, dB = e.shape
        if e.rule.name == "layernorm":
            F += 8.0 * S * dB
        elif e.rule.name == "embedding":
            F += float(S * dB)
        else:
            F += 2.0 * G * S * dA * dB
    return F + 2.0 * plan.fallback_size


def structured_work(
    plan: Any, m: int, ks: int, *, trace: bool = False, diagonal_only: bool = False, item: int = 4
) -> Work:
    """Work of the structured route on ``m`` samples and ``ks`` outputs (see module doc)."""
    from lossgeometry.kernel.rules.base import bilinear_costs

    pairs, sym = _pairs(m, ks, diagonal_only, trace)
    kk = ks if trace else ks * ks
    F = forward_flops(plan)
    w = _passes(plan, m, ks, F, item) + Work(ops=30.0 * len(plan.entries))
    for e in plan.entries:
        G, S, dA, dB = e.shape
        if e.rule.name == "layernorm":
            X = 2 * dB
            w = w + Work(batched_flops=3.0 * m * ks * S * dB, bytes=2.0 * m * ks * X * item)
            w = w + Work(gemm_flops=2.0 * sym * kk * X)
            continue
        if e.route == "materialize":
            X = G * dA * dB
            form = 2.0 * m * ks * G * S * dA * dB if e.rule.name != "embedding" else 0.0
            w = w + Work(batched_flops=form, bytes=3.0 * m * ks * X * item)
            w = w + Work(gemm_flops=2.0 * sym * kk * X)
        elif S == 1:
            w = w + Work(gemm_flops=2.0 * pairs * (dA + kk * dB), bytes=3.0 * pairs * kk * item)
        else:
            flops = bilinear_costs(1, 1, ks, G, S, dA, dB)["gram"] * pairs
            w = w + Work(gemm_flops=2.0 * flops)  # GRAM_PENALTY included
    if plan.fallback_size:
        w = w + _passes(plan, m, ks, F, item)
        w = w + Work(
            bytes=3.0 * m * ks * plan.fallback_size * item,
            gemm_flops=2.0 * sym * kk * plan.fallback_size,
            ops=100.0 * len(plan.fallback),
        )
    return w


def jacobian_work(
    plan: Any,
    p: int,
    m: int,
    ks: int,
    *,
    trace: bool = False,
    diagonal_only: bool = False,
    item: int = 4,
) -> Work:
    """Work of the jacobian route (``vmap(jacrev)`` of all ``p`` parameters, contracted)."""
    _, sym = _pairs(m, ks, diagonal_only, trace)
    kk = ks if trace else ks * ks
    F = forward_flops(plan)
    return _passes(plan, m, ks, F, item) + Work(
        layer_flops=m * ks * F,
        bytes=3.0 * m * ks * p * item,
        gemm_flops=2.0 * sym * kk * p,
        ops=100.0 * (len(plan.entries) + len(plan.fallback)),
    )


def estimate(
    problem: Problem,
    *,
    m: int | None = None,
    ks: int | None = None,
    trace: bool = False,
    diagonal_only: bool = False,
    cal: Calibration | None = None,
) -> dict[str, float]:
    """Predicted seconds of the ``structured`` and ``jacobian`` routes for a request.

    Args:
        problem: the problem (its structured plan is built, or taken from the cache).
        m: samples (default ``problem.n``).
        ks: outputs per sample (default ``problem.k``).
        trace: the ``outputs="trace"`` kernel.
        diagonal_only: only the per-sample blocks.
        cal: rates (default :func:`calibration` of the problem's device).
    """
    from lossgeometry.kernel.structured import build_plan

    plan = build_plan(problem)
    m = problem.n if m is None else m
    ks = problem.k if ks is None else ks
    cal = cal if cal is not None else calibration(problem.device)
    item = torch.empty((), dtype=problem.dtype).element_size()
    kw = dict(trace=trace, diagonal_only=diagonal_only, item=item)
    return {
        "structured": structured_work(plan, m, ks, **kw).seconds(cal),
        "jacobian": jacobian_work(plan, problem.p, m, ks, **kw).seconds(cal),
    }


def choose_method(
    problem: Problem,
    *,
    m: int,
    ks: int,
    trace: bool,
    diagonal_only: bool,
    fits: Callable[[str], bool],
) -> str:
    """The route ``method="auto"`` takes: ``"structured"``, ``"jacobian"`` or ``"ntvp"``.

    Args:
        problem: the problem.
        m: samples of the request.
        ks: outputs per sample.
        trace: the trace kernel.
        diagonal_only: only the per-sample blocks.
        fits: whether one sample's factors of a route (``"structured"``/``"jacobian"``) fit
            in the memory budget (``tangent_kernel`` asks its memory guard).

    ``ntvp`` when neither dense route fits; else the cheaper of the two by :func:`estimate`,
    ``jacobian`` only if :data:`MARGIN` times cheaper.
    """
    from lossgeometry.kernel.structured import build_plan

    s_ok, j_ok = fits("structured"), fits("jacobian")
    if not (s_ok or j_ok):
        return "ntvp"
    if not j_ok:
        return "structured"
    if not s_ok:
        return "jacobian"
    plan = build_plan(problem)
    if not plan.fallback and all(e.route != "materialize" for e in plan.entries):
        return "structured"  # nothing materialized: the Jacobian route cannot be cheaper
    t = estimate(problem, m=m, ks=ks, trace=trace, diagonal_only=diagonal_only)
    return "jacobian" if t["jacobian"] * MARGIN < t["structured"] else "structured"
