"""Options of the manifold study :func:`~lossgeometry.analyze_manifold`.

The one place each default lives, for the CLI (``lossgeometry manifold``), the report
(``[report.manifold]``) and Python callers alike.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from lossgeometry.options import Options, OptionsError

__all__ = ["ManifoldOptions"]


@dataclasses.dataclass(frozen=True)
class ManifoldOptions(Options):
    """Options of :func:`~lossgeometry.analyze_manifold`."""

    max_equations: int = 100
    """Study at most this many equations ``mk`` (a seeded subset of ``m = max_equations // k``
    samples) when the full problem has more: the dense Gauss–Newton solve costs ``O(mk · p)``
    memory and ``O((mk)² p)`` time per iteration."""
    tol: float = 1e-10
    """Interpolation target ``‖F − Y‖ < tol``."""
    max_iter: int = 30
    """Gauss–Newton iterations."""
    hessian: bool | Literal["auto", "dense", "randomized", "lanczos"] = "auto"
    """Count the Hessian's zero eigenvalues (``"auto"``: dense for small ``p``, randomized
    range finder above); ``false`` to skip."""
    walk_steps: int = 3
    """Persistent walk steps along the manifold (0: no walk and no segment)."""
    walk_step_size: float | None = None
    """Walk step length (default ``0.01 · ‖w*‖``)."""
    radii: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
    """Radii around ``w*`` searched for negative curvature."""
    seed: int = 0
    """Seed of the sample subset and of the random directions."""

    def check(self) -> None:
        """Positive counts and tolerances."""
        if self.max_equations < 1:
            raise OptionsError(f"max_equations = {self.max_equations}: must be at least 1")
        if self.max_iter < 1:
            raise OptionsError(f"max_iter = {self.max_iter}: must be at least 1")
        if self.walk_steps < 0:
            raise OptionsError(f"walk_steps = {self.walk_steps}: must be non-negative")
        if not self.tol > 0:
            raise OptionsError(f"tol = {self.tol}: must be positive")
        if self.walk_step_size is not None and not self.walk_step_size > 0:
            raise OptionsError(f"walk_step_size = {self.walk_step_size}: must be positive")
        if not self.radii or any(not r > 0 for r in self.radii):
            raise OptionsError(f"radii = {list(self.radii)}: must be positive numbers")
