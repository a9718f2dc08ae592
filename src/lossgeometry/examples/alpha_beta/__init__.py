r"""Analytic examples of the α-β-condition, with exact minimizer sets, and a checker.

Each example is ``f = (1/n) Σ_i f_i`` on ``R^d`` with a known minimizer set ``S`` and an
exact projection onto it. :func:`check_alpha_beta` evaluates, on a set of points ``x``, the
α-β test quantity of Definition 1 (Islamov, Ajroldi, Orvieto & Lucchi, NeurIPS 2024)

    T_i(x; α, β) = ⟨∇f_i(x), x − x_p⟩ − α (f_i(x) − f_i(x_p)) + β (f_i(x) − f_i*),
    x_p = Proj(x, S),

and reports for a grid of ``(α, β)`` whether ``min_{x, i} T_i ≥ 0`` (the pair holds on the
points), beside a claimed region.

The examples:

* :func:`example_1` — unbounded minimizer set (the paper's Example 1):
  ``f_1 = g(x + y)``, ``f_2 = g(x + y + 1)``, ``g(s) = s²/(s² + 1)``, ``S = {x + y = −½}``.
  The paper states the condition for ``α ≥ 5/2``, ``4α/5 ≤ β < α``. The exact region is
  larger; derivation: with ``u = x + y`` only ``u`` matters, ``x − x_p = ((u + ½)/2)(1, 1)``,
  ``f_i(x_p) = g(±½) = 1/5``, ``f_i* = 0``; multiplying ``T_1 ≥ 0`` by ``5(u² + 1)² > 0`` gives
  the quartic ``P(u) = (5β − 4α)u⁴ + (5β − 3α + 10)u² + 5u + α ≥ 0`` for all ``u``
  (``T_2`` at ``u`` equals ``T_1`` at ``−1 − u``, because ``g`` is even, so it adds no
  condition). So the pair holds iff ``P ≥ 0`` on ``R``: ``β ≥ 4α/5`` is necessary
  (leading coefficient), and sufficient as soon as the quadratic part is non-negative, i.e.
  for ``α ≥ α_0 = (5√5 − 10)/2 ≈ 0.590``. :meth:`AlphaBetaExample.exact_region` decides
  ``P ≥ 0`` from the real roots of ``P'``.
* :func:`example_2` — a saddle (Example 2): ``f_1 = 1 − exp(−‖x‖²)``,
  ``f_2 = 1 − exp(−‖x − (2, 2)‖²)``; ``S`` is two points on the diagonal, the saddle is
  ``(1, 1)``.
* :func:`example_3` — a non-global local minimum: rational wells at ``0`` and
  ``(2.5, 2.5)``, ``f_1 = ‖x‖²/(‖x‖² + 1)``, ``f_2 = ‖x − c‖²/(‖x − c‖² + 2)``. (Our instance
  of the paper's Example 3 family; the constants are ours.)
* :func:`ridge_family` and :func:`bumps_family` — the d-dimensional versions of Examples 1
  and 2 (Remark 1): Example 1 along any direction ``a ∈ R^d`` (same region for every ``d``,
  because only ``⟨a, x⟩`` matters), and two Gaussian bumps in ``R^d``.
* :func:`matrix_factorization` — rank-1 factorization ``f_i(u, v) = ½‖X_i − u_i vᵀ‖²``
  (rows of a target ``X``), ``S = {(t a, (σ/t) b)}`` for the top singular triple, a saddle at
  0; exact projection by a quartic in ``t``.
* :func:`relu_logistic` — a two-layer ReLU unit with logistic loss and weight decay,
  ``f_i(w, v) = log(1 + exp(−v relu(w ξ_i))) + (λ/2)(w² + v²)``, ``ξ_i > 0``; unique
  minimizer ``(√P*, √P*)`` and closed-form ``f_i*`` (derivation in the function).

Modules: :mod:`~lossgeometry.examples.alpha_beta.check` (the example type, the check and its
Result), :mod:`~lossgeometry.examples.alpha_beta.paper_examples` (Examples 1–3 and their
d-dimensional families), :mod:`~lossgeometry.examples.alpha_beta.model_examples` (matrix
factorization, ReLU-logistic).
"""

from __future__ import annotations

from collections.abc import Callable

from lossgeometry.examples.alpha_beta.check import (
    AlphaBetaCheck,
    AlphaBetaExample,
    check_alpha_beta,
)
from lossgeometry.examples.alpha_beta.check import Region as Region  # importable as before
from lossgeometry.examples.alpha_beta.model_examples import matrix_factorization, relu_logistic
from lossgeometry.examples.alpha_beta.paper_examples import (
    bumps_family,
    example_1,
    example_2,
    example_3,
    ridge_family,
)

__all__ = [
    "AlphaBetaCheck",
    "AlphaBetaExample",
    "bumps_family",
    "check_alpha_beta",
    "example_1",
    "example_2",
    "example_3",
    "examples",
    "matrix_factorization",
    "relu_logistic",
    "ridge_family",
]


def examples() -> dict[str, Callable[[], AlphaBetaExample]]:
    """The built-in examples by name (factories with default arguments)."""
    return {
        "example_1": example_1,
        "example_2": example_2,
        "example_3": example_3,
        "ridge_family": lambda: ridge_family(5),
        "bumps_family": lambda: bumps_family(5, 1.0),
        "matrix_factorization": matrix_factorization,
        "relu_logistic": relu_logistic,
    }
