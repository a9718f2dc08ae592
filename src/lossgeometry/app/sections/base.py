"""What a report section is: its context, its output, and the decorator that registers it.

One section is one module under ``sections/``, switched on or off by config.

A section is a function ``Context -> SectionOutput`` registered with :func:`section`::

    @section("kernel", title="Tangent kernel", order=30)
    def kernel(ctx: Context) -> SectionOutput:
        spec = lg.kernel_spectrum(ctx.problem, ctx.w_trained)
        fig = spec.plot()
        return SectionOutput(
            results=spec.to_dict(),
            html=html.metrics({"λ_min": spec.lambda_min}) + ctx.figure(fig, "kernel.png"),
            summary=spec.summary(),
        )

``lossgeometry analyze`` runs the enabled sections in ``order``, writes each one's output to
``sections/NAME.json`` atomically (so an interrupted run resumes where it stopped), and
assembles ``index.html`` and ``results.json``. Options for a section come from the config
table ``[report.NAME]`` (``ctx.options``, a plain dict the section checks itself);
``enabled = false`` there switches it off. ``summary`` is what sweeps read: a flat mapping of
headline scalars, stored as ``results.json`` → ``sections.NAME.summary``.

Under torchrun (``docs/distributed.md``) every rank runs every section. A section registered
with ``data_parallel=True`` gets this rank's shard of the samples as ``ctx.problem`` (its
measurements all-reduce over the ranks); the others get the whole Problem on every rank and
compute the same numbers everywhere. Turning a section data-parallel, once the library
measurements it calls run on a data-parallel Problem, is that one flag. Only rank 0 writes:
on the other ranks ``ctx.write`` is false and :meth:`Context.figure` saves nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from lossgeometry.problem import Problem
from lossgeometry.train import Trajectory


@dataclasses.dataclass
class Context:
    """What a section gets: the problem, the run, where to write, its options."""

    problem: Problem
    config: Mapping[str, Any]
    """The run's config (an ``AnalyzeConfig``; reads like the TOML: ``config["train"]``)."""
    w0: torch.Tensor
    """The initialization (flat parameters)."""
    trajectory: Trajectory
    """The training run of the config; ``w_trained`` is its end point."""
    outdir: Path
    seed: int = 0
    progress: bool | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """This section's ``[report.NAME]`` table (``enabled`` removed)."""
    data_name: str | None = None
    """What the data are, as :func:`~lossgeometry.app.config.build_problem` names them: the
    data set, or ``"FACTORY (own data)"`` when a model factory returned its own data
    (``None``: the config's ``[data] name``)."""
    write: bool = True
    """Whether this process writes files (``False`` on the ranks other than 0 under torchrun:
    :meth:`figure` then only closes the figure)."""

    @property
    def w_trained(self) -> torch.Tensor:
        """The trained point ``w_T``."""
        assert self.trajectory.w_final is not None
        return self.trajectory.w_final

    def figure(self, fig: Any, filename: str, caption: str = "") -> str:
        """Save a matplotlib figure under ``figures/`` and return its HTML ``<figure>``."""
        from lossgeometry.app.figures import save_figure
        from lossgeometry.app.sections import html

        if self.write:
            save_figure(fig, self.outdir / "figures", filename, tight=False, bbox_tight=True)
        else:
            import matplotlib.pyplot as plt

            plt.close(fig)
        return html.figure(f"figures/{filename}", caption)


@dataclasses.dataclass
class SectionOutput:
    """A section's results (JSON-able) and its HTML fragment (figures already saved)."""

    results: dict[str, Any]
    html: str
    skipped: str | None = None
    """If set, the section did not apply and this says why (shown in the report)."""
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Headline scalars (the study ``Result.summary()``); stored in ``results.json`` as
    ``sections.NAME.summary``, the one place sweeps read metrics from."""


@dataclasses.dataclass(frozen=True)
class SectionSpec:
    """A registered section."""

    name: str
    title: str
    order: int
    fn: Callable[[Context], SectionOutput]
    default: bool
    description: str
    data_parallel: bool = False
    """Whether the section runs on this rank's shard under torchrun (its measurements run on a
    data-parallel Problem); ``False``: on the whole Problem, on every rank."""


SECTIONS: dict[str, SectionSpec] = {}


def section(
    name: str, *, title: str, order: int, default: bool = True, data_parallel: bool = False
) -> Callable[[Callable[[Context], SectionOutput]], Callable[[Context], SectionOutput]]:
    """Register a report section under ``name`` (``default``: on unless the config says no).

    ``data_parallel``: under torchrun the section gets this rank's shard (every measurement
    it calls runs on a data-parallel Problem); otherwise the whole Problem on every rank.
    """

    def deco(fn: Callable[[Context], SectionOutput]) -> Callable[[Context], SectionOutput]:
        if name in SECTIONS and SECTIONS[name].fn is not fn:
            raise ValueError(f"a report section named {name!r} is already registered")
        doc = (fn.__doc__ or "").strip().splitlines()
        SECTIONS[name] = SectionSpec(
            name, title, order, fn, default, doc[0] if doc else "", data_parallel
        )
        return fn

    return deco
