"""Degenerate critical points of deep networks: two zero weight matrices, and their nullity.

Cooper (arXiv:2005.04210) finds loci of *degenerate* critical points in deep networks, with
many zero Hessian eigenvalues. This module builds one explicit family and predicts the
number of zero eigenvalues in closed form, so that it can be checked against a measured
Hessian.

Setting: a bias-free feed-forward network ``f = W_L ∘ σ ∘ W_{L−1} ∘ … ∘ σ ∘ W_1`` (an
``nn.Sequential`` of ``nn.Linear(bias=False)`` layers and elementwise activations with
``σ(0) = 0``, e.g. tanh), squared loss ``L = c · ½ Σ_x ‖f(x) − y_x‖²``.

**Two zero layers** ``W_i = W_j = 0`` (``i < j``). Any perturbation that leaves one of them
at zero keeps ``f ≡ 0``, so ``J = 0``, ``∇L = Jᵀ r = 0``: a critical point, with
``r_x = −y_x``. The only non-zero second derivatives are mixed ``(W_i, W_j)`` ones. With
``W_i = εA``, ``W_j = δC`` and everything else fixed, linearizing at the zero activations,

    ``f(x) = εδ · P C Q A h_x + O(ε²δ, εδ²)``

where ``h_x`` is the input of layer ``i`` (``h_x = x`` for ``i = 1``), ``Q`` is the Jacobian
at 0 of the modules strictly between ``W_i`` and ``W_j`` (``I`` when adjacent), and ``P``
that of the modules after ``W_j`` (``I`` when ``j = L``). So the Hessian is the block
``[[0, B], [Bᵀ, 0]]`` on ``(W_i, W_j)`` with the bilinear form

    ``B(A, C) = c Σ_x r_xᵀ P C Q A h_x = c · tr(C · Q A G P)``,   ``G = Σ_x h_x r_xᵀ``.

As a linear map ``A ↦ Q A (G P)`` its rank is ``rank(Q) · rank(G P)`` (Kronecker product),
and the block matrix has eigenvalues ``±σ_i(B)``, so

    ``nullity(∇²L) = p − 2 · rank(Q) · rank(G P)``.

With three or more zero weight matrices every second derivative vanishes and the nullity is
``p``. Generic ranks: ``rank Q = min(m_i, …, m_{j−1})``, ``rank(G P) ≤ min(m_{i−1}, n, k, m_j)``
— so the number of non-zero eigenvalues is at most ``2 · width · k`` while ``p`` grows like
``width²``: in wide deep networks almost all Hessian eigenvalues at these points are zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lossgeometry._compat import deprecated_call_style
from lossgeometry._plotting import axes_or_new
from lossgeometry.linalg.rank import numerical_rank
from lossgeometry.manifold._linalg import as_float64, flat_w, require_mse
from lossgeometry.problem import Problem
from lossgeometry.results import Result

__all__ = ["DegeneratePrediction", "linear_layers", "predict_zero_layer_nullity", "zero_layers"]


def linear_layers(problem: Problem) -> list[str]:
    """Names of the weight matrices of a bias-free ``nn.Sequential`` of Linear layers.

    Raises:
        TypeError: the model is not an ``nn.Sequential``.
        ValueError: a Linear layer has a bias (then zero weights are no critical point), or a
            non-Linear module does not map 0 to 0 or holds parameters.
    """
    model = problem.model
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            "zero-layer critical points are implemented for nn.Sequential models of "
            f"nn.Linear layers and activations; got {type(model).__name__}"
        )
    names = []
    for name, mod in model.named_children():
        if isinstance(mod, nn.Linear):
            if mod.bias is not None:
                raise ValueError(
                    f"layer {name!r} has a bias: with biases, zero weight matrices are not a "
                    "critical point; build the model with bias=False"
                )
            names.append(f"{name}.weight")
        else:
            if any(True for _ in mod.parameters()):
                raise ValueError(f"module {name!r} has parameters; only Linear layers may")
            z = torch.zeros(1, 3, dtype=problem.dtype, device=problem.device)
            with torch.no_grad():
                if float(mod(z).abs().max()) != 0.0:
                    raise ValueError(
                        f"module {name!r} does not map 0 to 0 (σ(0) ≠ 0): zero layers are then "
                        "not a critical point"
                    )
    missing = [n for n in names if n not in problem.param_names]
    if missing:
        raise ValueError(f"weights {missing} are not among the Problem's counted parameters")
    return names


@deprecated_call_style(positional=("layers",))
def zero_layers(problem: Problem, w: torch.Tensor, *, layers: Sequence[int]) -> torch.Tensor:
    """``w`` with the weight matrices ``layers`` (0-based among the Linear layers) set to 0.

    Passing ``layers`` by position (the former call style) works for one release, with a
    :class:`DeprecationWarning`.
    """
    names = linear_layers(problem)
    out = w.detach().clone()
    sl = problem.param_slices
    for i in layers:
        if not 0 <= i < len(names):
            raise ValueError(f"layer index {i} out of range: the model has {len(names)} layers")
        out[sl[names[i]]] = 0.0
    return out


@dataclasses.dataclass(frozen=True)
class DegeneratePrediction(Result):
    """The closed-form nullity of ``∇²L`` at a point with zero weight matrices.

    Attributes:
        layers: the zero weight matrices (0-based among the Linear layers).
        p: number of parameters.
        rank_Q: ``rank Q`` (Jacobian at 0 of the modules between the two zero layers).
        rank_GP: ``rank(G P)`` with ``G = Σ_x h_x r_xᵀ`` and ``P`` the Jacobian at 0 of the
            modules after the second zero layer.
        nonzero: ``2 · rank_Q · rank_GP``, the predicted number of non-zero eigenvalues
            (0 with three or more zero layers).
        nullity: ``p − nonzero``.
    """

    layers: list[int]
    p: int
    rank_Q: int
    rank_GP: int
    nonzero: int
    nullity: int

    def summary(self) -> dict[str, Any]:
        """Headline scalars: the predicted nullity, its share of ``p``, the two ranks."""
        return {
            "nullity": self.nullity,
            "nonzero": self.nonzero,
            "p": self.p,
            "zero_fraction": self.nullity / self.p,
            "rank_Q": self.rank_Q,
            "rank_GP": self.rank_GP,
            "layers": ",".join(str(i) for i in self.layers),
        }

    def plot(self, ax: Any = None) -> Any:
        """The predicted split of the ``p`` Hessian eigenvalues: zero against non-zero.

        Bars, in order: ``nullity`` (zero eigenvalues), ``nonzero = 2 · rank_Q · rank_GP``
        (``±σ_i(B)`` pairs). Returns the Axes.
        """
        ax = axes_or_new(ax, (4.5, 3.5))
        ax.bar([0, 1], [self.nullity, self.nonzero], color=["0.5", "C0"])
        ax.set_xticks([0, 1], ["zero", "non-zero"])
        ax.set_ylabel("eigenvalues of ∇²L (predicted)")
        layers = ", ".join(str(i) for i in self.layers)
        ax.set_title(
            f"zero layers {layers}: nullity {self.nullity} of p = {self.p}\n"
            f"non-zero = 2 · {self.rank_Q} · {self.rank_GP}"
        )
        return ax


def _jacobian_at_zero(modules: list[nn.Module], m_in: int, like: torch.Tensor) -> torch.Tensor:
    if not modules:
        return torch.eye(m_in, dtype=like.dtype, device=like.device)
    seq = nn.Sequential(*modules)
    z = torch.zeros(m_in, dtype=like.dtype, device=like.device)
    return torch.func.jacrev(lambda u: seq(u.unsqueeze(0))[0])(z)


@deprecated_call_style(positional=("layers",))
def predict_zero_layer_nullity(
    problem: Problem, w: torch.Tensor, *, layers: Sequence[int]
) -> DegeneratePrediction:
    """Predict the number of zero Hessian eigenvalues at ``w`` with ``layers`` zeroed.

    ``w`` must already have those weight matrices at zero (see :func:`zero_layers`); the
    other weights are what they are. See the module docstring for the formula
    ``p − 2 · rank(Q) · rank(G P)``. Passing ``layers`` by position (the former call style)
    works for one release, with a :class:`DeprecationWarning`.
    """
    require_mse(problem, "predict_zero_layer_nullity")
    p64 = as_float64(problem)
    w = flat_w(p64, w.to(torch.float64))
    names = linear_layers(p64)
    zs = sorted(set(int(i) for i in layers))
    if len(zs) < 2:
        raise ValueError("give at least two zero layers (one zero layer is not a critical point)")
    sl = p64.param_slices
    for i in zs:
        if float(w[sl[names[i]]].abs().max()) != 0.0:
            raise ValueError(f"layer {i} ({names[i]}) is not zero at w: call zero_layers first")
    if len(zs) >= 3:
        return DegeneratePrediction(zs, p64.p, 0, 0, 0, p64.p)
    i, j = zs
    model = p64.with_params(w).model
    children = list(model.children())
    lin_pos = [k for k, m in enumerate(children) if isinstance(m, nn.Linear)]
    pi, pj = lin_pos[i], lin_pos[j]
    Wi, Wj = children[pi].weight, children[pj].weight
    X = torch.cat([x for _, x, _ in p64.iter_chunks()])
    Y = p64.targets()
    with torch.no_grad():
        H = nn.Sequential(*children[:pi])(X) if pi > 0 else X  # inputs of layer i, (n, m_{i−1})
        F = model(X).reshape(X.shape[0], -1)
    R = F - Y  # = −Y at the critical point
    G = H.reshape(H.shape[0], -1).T @ R  # (m_{i−1}, k)
    Q = _jacobian_at_zero(children[pi + 1 : pj], Wi.shape[0], X)  # (m_{j−1}, m_i)
    P = _jacobian_at_zero(children[pj + 1 :], Wj.shape[0], X)  # (k, m_j)
    rq = numerical_rank(Q).rank
    rgp = numerical_rank(G @ P).rank
    nonzero = 2 * rq * rgp
    return DegeneratePrediction(zs, p64.p, rq, rgp, nonzero, p64.p - nonzero)
