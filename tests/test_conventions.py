"""Conventions every Result of the package follows (docs/design.md, Conventions).

* ``summary()``: defined by the class or a non-base ancestor (the base ``Result`` has none);
  a flat dict of headline numbers for tables and sweeps.
* ``plot(ax=None, *, ...)``: the first parameter after ``self`` is ``ax`` with default
  ``None``; every other parameter is keyword-only.

Every module of the package is imported, then every subclass of ``Result`` defined in it is
checked. (The numbers each summary and plot carry are checked per class in the packages' own
tests, against the Result's fields.)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import lossgeometry
from lossgeometry.results import Result


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
    assert {"HessianBound", "TraceEstimate", "Rank", "ManifoldWalk", "Trajectory"} <= names
    assert len(names) >= 30


def test_the_check_can_fail():
    class Bad(Result):
        def plot(self, fig=None, ax=None):
            return None

    assert _problems(Bad)[:2] == [
        "no summary()",
        "plot's first parameter is not ax=None: plot(self, fig=None, ax=None)",
    ]


@pytest.mark.parametrize("cls", RESULTS, ids=lambda c: c.__name__)
def test_result_has_summary_and_plot_with_ax_first(cls):
    problems = _problems(cls)
    assert not problems, f"{cls.__module__}.{cls.__name__}: {'; '.join(problems)}"
