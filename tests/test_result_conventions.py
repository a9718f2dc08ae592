"""The Result conventions of docs/design.md, checked on every Result of the measurement
packages: ``summary()`` and ``plot(ax=None, *, ...)`` (``ax`` first, the rest keyword-only).

(The numbers each summary and plot carry are checked per class in the packages' tests.)"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import lossgeometry as lg
from lossgeometry.results import _REGISTRY

PACKAGES = ("curvature", "linalg", "manifold", "kernel", "operators")


def _import_all() -> None:
    for pkg in PACKAGES:
        mod = importlib.import_module(f"lossgeometry.{pkg}")
        for info in pkgutil.walk_packages(mod.__path__, prefix=mod.__name__ + "."):
            importlib.import_module(info.name)


_import_all()
MEASURED = [cls for cls in _REGISTRY.values() if cls.__module__.split(".")[1] in PACKAGES]
RESULTS = [*sorted(MEASURED, key=lambda c: c.__name__), lg.Trajectory]


def test_the_list_is_complete():
    names = {c.__name__ for c in RESULTS}
    assert {"HessianBound", "TraceEstimate", "Rank", "ManifoldWalk", "KernelSpectrum"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("cls", RESULTS, ids=lambda c: c.__name__)
def test_summary_and_plot_signatures(cls):
    assert callable(getattr(cls, "summary", None)), f"{cls.__name__} has no summary()"
    assert list(inspect.signature(cls.summary).parameters) == ["self"]
    params = list(inspect.signature(cls.plot).parameters.values())
    assert [p.name for p in params[:2]] == ["self", "ax"], f"{cls.__name__}.plot: ax first"
    assert params[1].default is None
    rest = [p for p in params[2:] if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), (
        f"{cls.__name__}.plot: parameters after ax must be keyword-only"
    )
