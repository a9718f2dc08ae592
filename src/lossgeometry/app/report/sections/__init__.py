"""Built-in report sections; each module registers itself on import (one line each)."""

from lossgeometry.app.report.sections import (  # noqa: F401
    alphabeta,
    curvature,
    kernel,
    manifold,
    plstar,
    problem,
    training,
)
