"""Report section: the loss surface around the trained point and the path from the start.

It calls :func:`lossgeometry.surfaces.loss_surface` at ``w_T`` (the trained point) and
:func:`lossgeometry.surfaces.loss_path` from ``w0`` to ``w_T`` and renders their Results:

* a contour plot of ``L(w_T + x d₁ + y d₂)`` with labelled levels. With a training run that
  kept its iterates (``lg.train(..., record_iterates=True)``) the plane is spanned by the
  run's top-2 PCA directions and the run is drawn on it (Li et al. 2018, Sec. 7); the report's
  own run keeps no iterates (they cost ``records × p`` numbers), so by default the directions
  are random and filter-normalized (Li et al.: per filter, biases and normalization layers
  zero);
* the loss on the straight line ``w0 + t (w_T − w0)`` (Goodfellow et al. 2015), both ends
  marked.

Options (``[report.surface]``) are the fields of
:class:`~lossgeometry.surfaces.SurfaceOptions`, with their defaults there (``points = 21``:
441 grid points, a fraction of a second on the default model); ``seed`` defaults to the
config's seed, ``accuracy`` to whether the loss is cross-entropy.
"""

from __future__ import annotations

from typing import Any

from lossgeometry.app.sections import html
from lossgeometry.app.sections.base import Context, SectionOutput, section


@section(
    "surface",
    title="Loss surface and the path from initialization",
    order=25,
    data_parallel=True,
)
def surface_section(ctx: Context) -> SectionOutput:
    """Contour of the loss on a plane through w_T (PCA of the run, or random) and w0 → w_T."""
    import matplotlib.pyplot as plt

    from lossgeometry.surfaces import SurfaceOptions, loss_path, loss_surface

    problem = ctx.problem
    iterates = getattr(ctx.trajectory, "iterates", None)
    given = dict(ctx.options)
    given.setdefault("seed", ctx.seed)
    given.setdefault("accuracy", problem.loss_name == "cross_entropy" and not problem.custom_loss)
    if "directions" not in given and iterates is not None:
        given["directions"] = "pca"
    opts = SurfaceOptions.from_mapping(given, where="report.surface")
    notes = []
    if opts.directions == "pca" and iterates is None:
        notes.append(
            "directions = 'pca' needs the training run's iterates, which this run did not "
            "keep: the plane is spanned by random filter-normalized directions instead."
        )
        opts = opts.replace(directions="random")
    surf = loss_surface(
        problem, ctx.w_trained, options=opts, trajectory=ctx.trajectory, progress=ctx.progress
    )
    path = loss_path(
        problem,
        ctx.w0,
        end=ctx.w_trained,
        options=opts.replace(directions="random", xrange=None),
        progress=ctx.progress,
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    surf.plot(axes[0], kind="contour", log=True)
    axes[0].set_title(f"log₁₀ L around w_T ({surf.directions} directions)")
    path.plot(axes[1], log=True)
    axes[1].set_title("L on the line w0 + t (w_T − w0)")
    fig.tight_layout()
    summary: dict[str, Any] = dict(surf.summary())
    summary.update({f"path_{k}": v for k, v in path.summary().items() if k != "direction"})
    metrics = {
        "L(w_T)": surf.center_loss,
        "min on grid": summary["loss_min"],
        "max on grid": summary["loss_max"],
        "L(w0)": path.loss_start,
        "barrier w0 → w_T": summary["path_barrier"],
        "grid points": len(surf.x) * len(surf.y),
        "seconds": surf.wall_time + path.wall_time,
    }
    body = html.metrics(metrics)
    for note in notes:
        body += html.note(note, "info")
    what = (
        "the top-2 PCA directions of the training run (the run drawn on the plane)"
        if surf.directions == "pca"
        else "two random filter-normalized directions (Li et al. 2018: each filter — a row of "
        "a Linear weight, an output channel of a convolution — has the norm of the trained "
        "point's filter; biases and normalization layers are zero)"
    )
    how = "with vmap, many points per forward pass" if surf.evaluation == "vmap" else "one by one"
    body += html.para(
        f"The loss (reduction {problem.reduction!r}) on the plane through the trained point "
        f"w_T spanned by {what}, on a {len(surf.x)}×{len(surf.y)} grid evaluated "
        f"{how}"
        "; right: the loss on the straight line from the initialization w0 (t = 0) to w_T "
        "(t = 1). The barrier is the largest excess of the loss over the chord between the "
        "two ends: zero or below means no bump on the way from w0 to w_T."
    )
    body += ctx.figure(fig, "surface.png", "Loss surface around w_T and the path w0 → w_T")
    return SectionOutput(
        results={"surface": surf.to_dict(), "path": path.to_dict(), "notes": notes},
        html=body,
        summary=summary,
    )
