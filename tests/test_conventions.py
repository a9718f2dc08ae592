"""Conventions every Result of the package follows (docs/design.md, Conventions).

* ``summary()``: defined by the class or a non-base ancestor (the base ``Result`` has none);
  a flat dict of headline numbers for tables and sweeps.
* ``plot(ax=None, *, ...)``: the first parameter after ``self`` is ``ax`` with default
  ``None``; every other parameter is keyword-only.

Every module of the package is imported, then every subclass of ``Result`` defined in it is
checked. ``_KNOWN_TODO`` names the classes that do not follow them yet; it only shrinks (a
class that now follows them must leave it, a name that no longer exists too).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import lossgeometry
from lossgeometry.results import Result

# Results that do not follow the conventions yet (fixed by the lead after merging the
# operator/curvature/manifold/kernel and the recording branches). Empty it, never grow it.
_KNOWN_TODO = {
    "DegeneratePrediction",
    "HessianBound",
    "HessianDensity",
    "HessianNullity",
    "HessianSpectrum",
    "HessianTrace",
    "Interpolant",
    "KernelSpectrum",
    "LocalConvexity",
    "LossGrowth",
    "ManifoldAnalysis",
    "ManifoldReport",
    "ManifoldWalk",
    "ModelHessianNorm",
    "NegativeCurvature",
    "Rank",
    "SegmentLoss",
    "TraceEstimate",
    "Trajectory",
}


def _all_results() -> list[type[Result]]:
    for mod in pkgutil.walk_packages(lossgeometry.__path__, "lossgeometry."):
        importlib.import_module(mod.name)
    seen: dict[str, type[Result]] = {}
    stack = list(Result.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("lossgeometry."):
            seen[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [seen[k] for k in sorted(seen)]


RESULTS = _all_results()


def _problems(cls: type[Result]) -> list[str]:
    out = []
    own = [k for k in cls.__mro__ if k not in (Result, object) and issubclass(k, Result)]
    if not any("summary" in vars(k) for k in own):
        out.append("no summary()")
    plot = getattr(cls, "plot", None)
    if plot is None:
        out.append("no plot()")
        return out
    params = list(inspect.signature(plot).parameters.values())[1:]
    if not params or params[0].name != "ax" or params[0].default is not None:
        out.append(f"plot's first parameter is not ax=None: plot{inspect.signature(plot)}")
    elif params[0].kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
        out.append("plot's ax cannot be passed by position")
    rest = [
        p.name
        for p in params[1:]
        if p.kind not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
    ]
    if rest:
        out.append(f"plot's parameters after ax are not keyword-only: {rest}")
    return out


def test_the_package_has_results():
    names = {c.__name__ for c in RESULTS}
    assert {"PLStarCertificate", "ConditionTrace", "SweepResult", "SGDStep"} <= names


@pytest.mark.parametrize("cls", RESULTS, ids=lambda c: c.__name__)
def test_result_has_summary_and_plot_with_ax_first(cls):
    problems = _problems(cls)
    if cls.__name__ in _KNOWN_TODO:
        assert problems, f"{cls.__name__} follows the conventions now: remove it from _KNOWN_TODO"
        pytest.xfail(f"known: {'; '.join(problems)}")
    assert not problems, f"{cls.__module__}.{cls.__name__}: {'; '.join(problems)}"


def test_known_todo_names_existing_results():
    stale = _KNOWN_TODO - {c.__name__ for c in RESULTS}
    assert not stale, f"no Result is called {sorted(stale)} any more: remove from _KNOWN_TODO"
