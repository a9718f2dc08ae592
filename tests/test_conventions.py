"""Conventions of the package's functions and Results (docs/design.md, Conventions).

* The point is ``w``: every public function of a Problem takes ``(problem, w, *, ...)`` (a
  class: its ``__init__``), except those listed below with their reasons.

Every Result:

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


# --- the point is w ---------------------------------------------------------------------------
# Every public measurement function takes ``(problem, w, *, ...)``: the point is named ``w``,
# second after ``problem``, and every later argument is keyword-only (docs/design.md,
# Conventions). A class taking a Problem is checked by its ``__init__``. The exceptions, each
# with its reason:

TWO_POINTS = {
    "kernel_change": ("w0", "w1", "the start and the end of a run, each with its role"),
    "segment_loss": ("w_a", "w_b", "the two ends of the segment"),
}
"""Functions of two points with their own roles: both positional, the rest keyword-only."""

SECOND_POSITIONAL = {
    "model_hessian_operator": "u, the output weights of Σ u_ia ∇²F_ia, a second vector",
    "ModelHessianOperator": "u, the output weights of Σ u_ia ∇²F_ia, a second vector",
    "second_directional_derivative": "v, the direction of D²F[v, v], a second vector",
}
"""Functions whose argument after ``w`` may be positional too (a second vector)."""

NOT_A_POINT = {
    "train": "runs from a start point: w0 is a keyword of the run",
    "record_conditions": "runs from a start point: w0 is a keyword of the run",
    "alphabeta_study": "runs from a start point: w0 is a keyword of the run",
    "certified_sgd": "runs from a start point: w0 is a keyword of the run",
    "Recorder": "records a run from its start point w0 (train's, Monitor's)",
    "Monitor": "a callback of a run: no point",
    "LossGeometryCallback": "a Lightning callback of a run (a Monitor): no point",
    "BallPoints": "collects the points of the ball B(w0, ρ) around its centre w0",
    "run_certified_gd": "runs from the certificate's centre: takes the certificate",
    "sgd_step_size": "the step of a certificate: takes the certificate, not a point",
    "pl_ratio_profile": "measures along a training run: takes the trajectory",
    "kernel_size": "the kernel's order: depends on the Problem only",
    "data_parallel": "spreads a Problem's samples over ranks: no point",
    "shard": "spreads a Problem's samples over ranks: no point",
    "gather": "collects a data-parallel Problem's samples: no point",
    "linear_layers": "the Problem's Linear layers: no point",
    "jacobian_factors": "a kernel rule's helper on a parameter dict and a chunk, not a point",
    "writes_records": "which rank writes a run's records: depends on the Problem only",
    "estimate": "the kernel routes' cost: depends on the Problem's structure only",
    "choose_method": "method='auto''s choice: depends on the Problem's structure only",
}
"""Functions of a Problem that have no point (or only the start of a run)."""


def _problem_functions() -> dict[str, tuple[str, list[inspect.Parameter]]]:
    """Public functions and classes of the library whose first argument is the Problem."""
    found: dict[str, tuple[str, list[inspect.Parameter]]] = {}
    for info in pkgutil.walk_packages(lossgeometry.__path__, "lossgeometry."):
        parts = info.name.split(".")[1:]
        if parts[0] == "app" or any(p.startswith("_") for p in parts):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) and issubclass(obj, Result):
                continue
            fn = obj.__init__ if inspect.isclass(obj) else obj
            if not callable(fn) or not (inspect.isfunction(fn) or inspect.isclass(obj)):
                continue
            try:
                params = list(inspect.signature(fn).parameters.values())
            except (TypeError, ValueError):
                continue
            if inspect.isclass(obj):
                params = params[1:]  # self
            if params and params[0].name == "problem":
                found[obj.__name__] = (f"{obj.__module__}.{obj.__qualname__}", params[1:])
    return found


PROBLEM_FUNCTIONS = _problem_functions()


def _point_problems(name: str, params: list[inspect.Parameter]) -> list[str]:
    P = inspect.Parameter
    points = list(TWO_POINTS[name][:2]) if name in TWO_POINTS else ["w"]
    if name in SECOND_POSITIONAL:
        points.append(params[1].name if len(params) > 1 else "?")
    if [p.name for p in params[: len(points)]] != points:
        return [f"the point is not named w: {[p.name for p in params[:1]]}"]
    if any(p.kind is not P.POSITIONAL_OR_KEYWORD for p in params[: len(points)]):
        return [f"{', '.join(points)} cannot be passed by position"]
    rest = params[len(points) :]
    loose = [p.name for p in rest if p.kind not in (P.KEYWORD_ONLY, P.VAR_KEYWORD)]
    return [f"not keyword-only after w: {loose}"] if loose else []


def test_the_library_has_measurement_functions():
    names = set(PROBLEM_FUNCTIONS)
    assert {"hessian_spectrum", "kernel_spectrum", "find_interpolant", "plstar_study"} <= names
    assert {"HessianOperator", "NTKOperator", "TangentSpace", "tangent_kernel"} <= names
    assert len(names) >= 40


def test_the_point_check_can_fail():
    def old(problem, w_star, radii=(0.1,), *, seed=0):
        return None

    params = list(inspect.signature(old).parameters.values())[1:]
    assert _point_problems("old", params) == ["the point is not named w: ['w_star']"]
    params[0] = params[0].replace(name="w")
    assert _point_problems("old", params) == ["not keyword-only after w: ['radii']"]


def test_the_exceptions_are_real():
    """Every listed exception exists and needs its entry (the lists may only shrink)."""
    for name in {**TWO_POINTS, **SECOND_POSITIONAL, **NOT_A_POINT}:
        assert name in PROBLEM_FUNCTIONS, f"{name}: listed, but no such function of a Problem"
        assert _point_problems("", PROBLEM_FUNCTIONS[name][1]), f"{name} follows the rule now"


@pytest.mark.parametrize("name", sorted(set(PROBLEM_FUNCTIONS) - set(NOT_A_POINT)), ids=lambda n: n)
def test_the_point_is_w_and_the_rest_keyword_only(name):
    where, params = PROBLEM_FUNCTIONS[name]
    problems = _point_problems(name, params)
    assert not problems, f"{where}: {'; '.join(problems)}"
