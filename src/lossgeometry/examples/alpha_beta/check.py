r"""The α-β check of an analytic example: ``min_{x, i} T_i(x; α, β)`` on a grid of pairs.

An :class:`AlphaBetaExample` is ``f = (1/n) Σ_i f_i`` on ``R^d`` with its minimizer set and the
exact projection ``x_p = Proj(x, S)``; :func:`check_alpha_beta` evaluates

    T_i(x; α, β) = ⟨∇f_i(x), x − x_p⟩ − α (f_i(x) − f_i(x_p)) + β (f_i(x) − f_i*)

on a set of points and returns an :class:`AlphaBetaCheck` (Definition 1 of Islamov, Ajroldi,
Orvieto & Lucchi, NeurIPS 2024; the examples are in :mod:`lossgeometry.examples.alpha_beta`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lossgeometry._plotting import axes_or_new
from lossgeometry.conditions import _alphabeta_grid as grid
from lossgeometry.results import Result

__all__ = ["AlphaBetaCheck", "AlphaBetaExample", "Region", "check_alpha_beta"]

Region = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class AlphaBetaExample:
    """``f = (1/n) Σ f_i`` on ``R^dim`` with its minimizer set and the exact projection."""

    name: str
    description: str
    dim: int
    n: int
    losses: Callable[[torch.Tensor], torch.Tensor]
    """``(m, dim)`` float64 points ↦ ``(m, n)`` values ``f_i(x)`` (differentiable)."""
    f_star: np.ndarray
    """``f_i* = min f_i``, shape ``(n,)``."""
    project: Callable[[np.ndarray], np.ndarray]
    """Exact projection onto ``S``: ``(m, dim) ↦ (m, dim)``."""
    minimizers: str
    """``S`` in words/formula."""
    f_min: float
    """``min f``."""
    sample_points: Callable[[int, int], np.ndarray]
    """``(count, seed) ↦ (count, dim)`` default points where the condition is checked."""
    claimed_region: Region | None = None
    """The paper's stated region (``(α, β)`` grids ↦ bool), if it states one."""
    exact_region: Region | None = None
    """The exact region, where it is known in closed form."""
    special_points: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """Named points (saddles, local minima, elements of ``S``)."""

    def f(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """``f(x) = mean_i f_i(x)`` at ``(m, dim)`` points."""
        return self.values(x).mean(axis=1)

    def values(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """``f_i(x)``, shape ``(m, n)``."""
        t = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1, self.dim)
        with torch.no_grad():
            return self.losses(t).numpy()

    def terms(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, a, b)`` of shape ``(m, n)``: ``T_i = c − α a + β b`` at each point and ``i``.

        ``c = ⟨∇f_i(x), x − x_p⟩``, ``a = f_i(x) − f_i(x_p)``, ``b = f_i(x) − f_i*``, with
        gradients by autograd in float64 and ``x_p`` the exact projection.
        """
        X = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        xp = np.asarray(self.project(X), dtype=np.float64)
        t = torch.as_tensor(X).clone().requires_grad_(True)
        F = self.losses(t)
        grads = [
            torch.autograd.grad(F[:, i].sum(), t, retain_graph=i < self.n - 1)[0]
            for i in range(self.n)
        ]
        G = torch.stack(grads, dim=1).detach().numpy()  # (m, n, dim)
        d = X - xp
        c = np.einsum("mnd,md->mn", G, d)
        Fx = F.detach().numpy()
        a = Fx - self.values(xp)
        b = Fx - self.f_star[None, :]
        return c, a, b


@dataclasses.dataclass(frozen=True)
class AlphaBetaCheck(Result):
    """The α-β-condition of an analytic example on a grid of pairs, over a set of points."""

    example: str
    alphas: np.ndarray
    betas: np.ndarray
    min_T: np.ndarray
    """``min_{x, i} T_i(x; α, β)``, shape ``(len(alphas), len(betas))``."""
    holds: np.ndarray
    """``min_T ≥ −tol`` and ``α ≥ β + margin`` (``α > β`` when ``margin = 0``), ``β ≥ 0``."""
    region: np.ndarray | None
    """The region checked against (bool grid), if any."""
    region_name: str | None
    beta_lo: np.ndarray
    """Exact smallest β (over the points) per α; ``inf`` when none."""
    beta_hi: np.ndarray
    """Exact largest β per α (``inf`` unless some ``f_i`` went below ``f_i*``)."""
    smallest_pair: list[float] | None
    """Smallest α then β holding on the points (linear program), with ``α ≥ β + margin``."""
    num_points: int
    tol: float
    margin: float

    @property
    def region_fails(self) -> np.ndarray:
        """Pairs inside the region that fail at some point (the claim is contradicted)."""
        if self.region is None:
            raise ValueError("no region was given to check against")
        return np.asarray(self.region, bool) & ~np.asarray(self.holds, bool)

    @property
    def outside_holds(self) -> np.ndarray:
        """Pairs outside the region that hold at every point (the region is not tight)."""
        if self.region is None:
            raise ValueError("no region was given to check against")
        return ~np.asarray(self.region, bool) & np.asarray(self.holds, bool)

    def summary(self) -> dict[str, Any]:
        """JSON-able headline numbers."""
        out: dict[str, Any] = {
            "example": self.example,
            "points": self.num_points,
            "pairs": int(self.holds.size),
            "pairs_holding": int(np.sum(self.holds)),
            "smallest_pair": self.smallest_pair,
        }
        if self.region is not None:
            out["region"] = self.region_name
            out["region_pairs"] = int(np.sum(self.region))
            out["region_fails"] = int(self.region_fails.sum())
            out["outside_holds"] = int(self.outside_holds.sum())
        return out

    def plot(self, ax: Any = None) -> Any:
        """Heatmap of ``min T`` with the exact boundary and the region's outline."""
        ax = axes_or_new(ax, (4.6, 3.8))
        al, be, M = self.alphas, self.betas, self.min_T
        grid.draw_heatmap(ax, al, be, M, True, r"$\min_{x,i} T_i$")
        ok = np.isfinite(self.beta_lo) & (self.beta_lo <= self.beta_hi)
        ax.plot(al[ok], self.beta_lo[ok], "k", lw=1.4, label="min T = 0")
        ax.plot(
            al,
            al - self.margin,
            "k--",
            lw=1.0,
            label="α = β" if not self.margin else f"α = β + {self.margin:g}",
        )
        if self.region is not None:
            ax.contour(
                al,
                be,
                np.asarray(self.region, float).T,
                levels=[0.5],
                colors="gold",
                linewidths=1.4,
            )
            ax.plot([], [], color="gold", label=self.region_name or "region")
        ax.set_xlim(al.min(), al.max())
        ax.set_ylim(be.min(), be.max())
        ax.set_xlabel("α")
        ax.set_ylabel("β")
        ax.set_title(self.example)
        ax.legend(fontsize=7, loc="upper left")
        return ax


def check_alpha_beta(
    example: AlphaBetaExample,
    alphas: Sequence[float] | np.ndarray,
    betas: Sequence[float] | np.ndarray,
    region: str | Region | None = None,
    *,
    points: np.ndarray | None = None,
    num_points: int = 4000,
    seed: int = 0,
    tol: float = 1e-10,
    margin: float = 0.0,
) -> AlphaBetaCheck:
    """Check the α-β-condition of ``example`` on a grid of pairs over a set of points.

    Args:
        example: an :class:`AlphaBetaExample`.
        alphas: the grid of α.
        betas: the grid of β.
        region: ``"claimed"`` (the paper's region), ``"exact"`` (the closed-form region, where
            known), a function ``(A, B) -> bool array`` on the meshgrid, or ``None``.
        points: ``(m, dim)`` points (default: ``example.sample_points(num_points, seed)``
            plus the example's special points).
        num_points: number of default points.
        seed: seed of the default points.
        tol: a pair holds when ``min T ≥ −tol`` (rounding of float64 autograd).
        margin: require ``α ≥ β + margin`` (``0``: ``α > β`` strictly).

    Returns:
        An :class:`AlphaBetaCheck`; ``region_fails``/``outside_holds`` compare with the region.
    """
    al = np.asarray(alphas, dtype=float).reshape(-1)
    be = np.asarray(betas, dtype=float).reshape(-1)
    if points is None:
        pts = example.sample_points(num_points, seed)
        if example.special_points:
            pts = np.concatenate(
                [pts, *(np.reshape(p, (-1, example.dim)) for p in example.special_points.values())]
            )
    else:
        pts = np.asarray(points, dtype=float).reshape(-1, example.dim)
    c, a, b = (v.reshape(-1) for v in example.terms(pts))
    M = grid.min_affine(c, a, b, al, be)
    A, B = np.meshgrid(al, be, indexing="ij")
    order = (A > B) if margin == 0 else (A >= B + margin)
    holds = (M >= -tol) & order & (B >= 0)
    reg, reg_name = None, None
    if isinstance(region, str):
        fn = {"claimed": example.claimed_region, "exact": example.exact_region}.get(region)
        if region not in ("claimed", "exact"):
            raise ValueError(
                f"region must be 'claimed', 'exact', a function or None, got {region!r}"
            )
        if fn is None:
            raise ValueError(f"example {example.name!r} has no {region} region")
        reg, reg_name = np.asarray(fn(A, B), bool), region
    elif region is not None:
        reg, reg_name = np.asarray(region(A, B), bool), getattr(region, "__name__", "region")
    lo, hi = grid.beta_min(c, a, b, al, tol=tol)
    pair = grid.smallest_feasible_pair(c, a, b, margin=margin, tol=tol)
    return AlphaBetaCheck(
        example=example.name,
        alphas=al,
        betas=be,
        min_T=M,
        holds=holds,
        region=reg,
        region_name=reg_name,
        beta_lo=lo,
        beta_hi=hi,
        smallest_pair=None if pair is None else [pair[0], pair[1]],
        num_points=int(pts.shape[0]),
        tol=tol,
        margin=margin,
    )
