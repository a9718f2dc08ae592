"""Loss surfaces and paths: the pictures of Li et al. (2018) and Goodfellow et al. (2015).

* :func:`loss_surface` → :class:`LossSurface`: the loss on a plane through ``w`` spanned by
  random filter-normalized directions, the top-2 Hessian eigenvectors or the PCA of a
  training run (projected on the plane);
* :func:`loss_path` → :class:`LossPath`: the loss along a line (interpolation between two
  points, or a slice along a direction);
* :class:`SurfaceOptions`: the one copy of their defaults;
* the directions (:mod:`lossgeometry.surfaces.directions`) and the batched evaluation
  (:func:`evaluate_points`).
"""

from lossgeometry.surfaces.directions import (
    filter_normalize,
    filter_normalized_direction,
    gradient_direction,
    hessian_directions,
    trajectory_pca,
)
from lossgeometry.surfaces.evaluate import evaluate_points
from lossgeometry.surfaces.results import LossPath, LossSurface
from lossgeometry.surfaces.study import SurfaceOptions, loss_path, loss_surface

__all__ = [
    "LossPath",
    "LossSurface",
    "SurfaceOptions",
    "evaluate_points",
    "filter_normalize",
    "filter_normalized_direction",
    "gradient_direction",
    "hessian_directions",
    "loss_path",
    "loss_surface",
    "trajectory_pca",
]
