"""The renamed call styles (docs/design.md, Conventions): new style silent, old style warns.

One row per renamed function: the current call (``(problem, w, *, ...)``, ``solver=``,
``estimator=``, ``num_eigenvalues=``) runs without a warning; the former call (the point as
``w0``/``w_star``, later arguments by position, ``method=`` for a solver, ``k=`` for the
number of eigenvalues) gives a :class:`DeprecationWarning` per old part and *the same
result* (every number; wall times aside).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry._compat import deprecated_call_style
from lossgeometry.curvature.stepsize import auto_lr
from lossgeometry.manifold.degenerate import predict_zero_layer_nullity, zero_layers
from lossgeometry.manifold.gauss_newton import levenberg_marquardt
from lossgeometry.operators import HessianOperator, NTKOperator
from lossgeometry.options import Options, OptionsError
from lossgeometry.results import Result

POSITIONAL = "by position"
_OURS = (r"passing .* by position to .* is deprecated", r".*\(\): the argument '.*' is now called")
"""lossgeometry's own deprecation messages (others, e.g. torch's, are not counted)."""


def _problem() -> lg.Problem:
    """p = 50, n = 8, k = 2: square loss, float64, not at a minimum (indefinite Hessian)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    return lg.Problem(lg.models.mlp(3, 8, 1, 2, seed=0).double(), X, Y)


def _small() -> lg.Problem:
    """p = 41 > nk = 4: interpolable."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(4, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(4, 1, generator=g, dtype=torch.float64)
    return lg.Problem(lg.models.mlp(3, 8, 1, 1, seed=0).double(), X, Y)


def _deep() -> lg.Problem:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 5, generator=g, dtype=torch.float64)
    Y = torch.randn(8, 3, generator=g, dtype=torch.float64)
    model = lg.models.mlp(5, 4, 1, 3, activation="tanh", bias=False, seed=0).double()
    return lg.Problem(model, X, Y)


PB = _problem()
W = PB.params() + 0.01
SMALL = _small()
W_STAR = lg.find_interpolant(SMALL, progress=False).w
DEEP = _deep()
W_ZERO = zero_layers(DEEP, DEEP.params(), layers=[0, 1])


def _plain(x: Any) -> Any:
    """Comparable plain data: a Result's dict, an operator's dense matrix; no wall times."""
    if isinstance(x, Result):
        x = x.to_dict()
    if isinstance(x, lg.TorchLinearOperator):
        x = x.to_dense()
    if isinstance(x, Options):
        x = x.to_dict()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):  # e.g. a solver's state
        x = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items() if k not in ("seconds", "wall_time", "timings")}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().tolist()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


# (id, current call, former call, the former call's warnings: one regex each)
CASES: list[tuple[str, Callable[[], Any], Callable[[], Any], list[str]]] = [
    (
        "hessian_spectrum",
        lambda: lg.hessian_spectrum(PB, W, top=2, bottom=1, tol=1e-8, solver="lanczos"),
        lambda: lg.hessian_spectrum(PB, W, 2, 1, 1e-8, method="lanczos"),
        ["top, bottom, tol " + POSITIONAL, "'method' is now called 'solver'"],
    ),
    (
        "hessian_density",
        lambda: lg.hessian_density(PB, W, probes=2, steps=10, grid=50),
        lambda: lg.hessian_density(PB, W, 2, 10, grid=50),
        ["probes, steps " + POSITIONAL],
    ),
    (
        "hessian_trace",
        lambda: lg.hessian_trace(PB, W, estimator="hutchinson", samples=12),
        lambda: lg.hessian_trace(PB, W, "hutchinson", 12),
        ["estimator, samples " + POSITIONAL],
    ),
    (
        "hessian_trace method=",
        lambda: lg.hessian_trace(PB, W, estimator="exact"),
        lambda: lg.hessian_trace(PB, W, method="exact"),
        ["'method' is now called 'estimator'"],
    ),
    (
        "model_hessian_norm",
        lambda: lg.model_hessian_norm(PB, W, inputs=None, seed=1, tol=1e-6, maxiter=20),
        lambda: lg.model_hessian_norm(PB, W, None, 1, 1e-6, 20),
        ["inputs, seed, tol, maxiter " + POSITIONAL],
    ),
    (
        "hessian_operator",
        lambda: lg.hessian_operator(PB, W, of="ggn", dtype=torch.float64),
        lambda: lg.hessian_operator(PB, W, "ggn", torch.float64),
        ["of, dtype " + POSITIONAL],
    ),
    (
        "HessianOperator",
        lambda: HessianOperator(PB, W, of="ggn"),
        lambda: HessianOperator(PB, W, "ggn"),
        ["of " + POSITIONAL],
    ),
    (
        "kernel_spectrum",
        lambda: lg.kernel_spectrum(PB, W, num_eigenvalues=2, solver="lanczos", tol=1e-10),
        lambda: lg.kernel_spectrum(PB, W, 2, "lanczos", 1e-10),
        ["num_eigenvalues, solver, tol " + POSITIONAL],
    ),
    (
        "kernel_spectrum k= method=",
        lambda: lg.kernel_spectrum(PB, W, num_eigenvalues=3, solver="lanczos", tol=1e-9),
        lambda: lg.kernel_spectrum(PB, W, k=3, method="lanczos", tol=1e-9),
        ["'method' is now called 'solver'", "'k' is now called 'num_eigenvalues'"],
    ),
    (
        "tangent_kernel",
        lambda: lg.tangent_kernel(PB, W, method="jacobian", outputs=[1], diagonal_only=True),
        lambda: lg.tangent_kernel(PB, W, "jacobian", [1], True),
        ["method, outputs, diagonal_only " + POSITIONAL],
    ),
    (
        "ntk_operator",
        lambda: lg.ntk_operator(PB, W, chunk_size=3),
        lambda: lg.ntk_operator(PB, W, 3),
        ["chunk_size " + POSITIONAL],
    ),
    (
        "NTKOperator",
        lambda: NTKOperator(PB, W, sel=torch.tensor([0]), indices=None, chunk_size=3),
        lambda: NTKOperator(PB, W, torch.tensor([0]), None, 3),
        ["sel, indices, chunk_size " + POSITIONAL],
    ),
    (
        "find_interpolant",
        lambda: lg.find_interpolant(SMALL, SMALL.params(), solver="lbfgs", tol=1e-9),
        lambda: lg.find_interpolant(SMALL, w0=SMALL.params(), method="lbfgs", tol=1e-9),
        ["'w0' is now called 'w'", "'method' is now called 'solver'"],
    ),
    (
        "find_interpolant positional",
        lambda: lg.find_interpolant(SMALL, None, solver="gauss-newton", tol=1e-10),
        lambda: lg.find_interpolant(SMALL, None, "gauss-newton", 1e-10),
        ["solver, tol " + POSITIONAL],
    ),
    (
        "least_squares_minimum",
        lambda: lg.least_squares_minimum(SMALL, SMALL.params(), progress=False),
        lambda: lg.least_squares_minimum(SMALL, w0=SMALL.params(), progress=False),
        ["'w0' is now called 'w'"],
    ),
    (
        "levenberg_marquardt",
        lambda: levenberg_marquardt(SMALL, SMALL.params(), tol=1e-10, max_iter=5),
        lambda: levenberg_marquardt(SMALL, w0=SMALL.params(), tol=1e-10, max_iter=5),
        ["'w0' is now called 'w'"],
    ),
    (
        "analyze_manifold",
        lambda: lg.analyze_manifold(SMALL, SMALL.params(), walk_steps=0, radii=(1e-2, 1e-3)),
        lambda: lg.analyze_manifold(SMALL, w0=SMALL.params(), walk_steps=0, radii=(1e-2, 1e-3)),
        ["'w0' is now called 'w'"],
    ),
    (
        "solution_manifold",
        lambda: lg.solution_manifold(SMALL, W_STAR, hessian="dense"),
        lambda: lg.solution_manifold(SMALL, w_star=W_STAR, hessian="dense"),
        ["'w_star' is now called 'w'"],
    ),
    (
        "loss_growth",
        lambda: lg.loss_growth(SMALL, W_STAR, num_directions=1),
        lambda: lg.loss_growth(SMALL, w_star=W_STAR, num_directions=1),
        ["'w_star' is now called 'w'"],
    ),
    (
        "negative_curvature_near",
        lambda: lg.negative_curvature_near(
            SMALL, W_STAR, radii=(1e-1, 1e-2), seed=2, solver="dense"
        ),
        lambda: lg.negative_curvature_near(SMALL, W_STAR, (1e-1, 1e-2), 2, method="dense"),
        ["radii, seed " + POSITIONAL, "'method' is now called 'solver'"],
    ),
    (
        "negative_curvature_near w_star=",
        lambda: lg.negative_curvature_near(SMALL, W_STAR, radii=(1e-2,)),
        lambda: lg.negative_curvature_near(SMALL, w_star=W_STAR, radii=(1e-2,)),
        ["'w_star' is now called 'w'"],
    ),
    (
        "local_convexity",
        lambda: lg.local_convexity(SMALL, W_STAR, radii=(1e-2, 1e-3), samples=2, seed=1),
        lambda: lg.local_convexity(SMALL, W_STAR, (1e-2, 1e-3), 2, 1),
        ["radii, samples, seed " + POSITIONAL],
    ),
    (
        "walk_manifold",
        lambda: lg.walk_manifold(SMALL, W_STAR, steps=2, step_size=0.05, seed=1, progress=False),
        lambda: lg.walk_manifold(SMALL, W_STAR, 2, 0.05, 1, progress=False),
        ["steps, step_size, seed " + POSITIONAL],
    ),
    (
        "walk_manifold w_star=",
        lambda: lg.walk_manifold(SMALL, W_STAR, steps=1, step_size=0.05, progress=False),
        lambda: lg.walk_manifold(SMALL, w_star=W_STAR, steps=1, step_size=0.05, progress=False),
        ["'w_star' is now called 'w'"],
    ),
    (
        "segment_loss",
        lambda: lg.segment_loss(SMALL, W_STAR, 1.1 * W_STAR, num=5),
        lambda: lg.segment_loss(SMALL, W_STAR, 1.1 * W_STAR, 5),
        ["num " + POSITIONAL],
    ),
    (
        "hessian_nullity",
        lambda: lg.hessian_nullity(SMALL, W_STAR, solver="dense"),
        lambda: lg.hessian_nullity(SMALL, W_STAR, method="dense"),
        ["'method' is now called 'solver'"],
    ),
    (
        "plstar_study",
        lambda: lg.plstar_study(SMALL, SMALL.params(), options=lg.PLStarOptions(samples=1)),
        lambda: lg.plstar_study(SMALL, w0=SMALL.params(), options=lg.PLStarOptions(samples=1)),
        ["'w0' is now called 'w'"],
    ),
    (
        "auto_lr",
        lambda: auto_lr(PB, W, seed=1, iters=10),
        lambda: auto_lr(PB, W, 1, 10),
        ["seed, iters " + POSITIONAL],
    ),
    (
        "zero_layers",
        lambda: zero_layers(DEEP, DEEP.params(), layers=[0, 1]),
        lambda: zero_layers(DEEP, DEEP.params(), [0, 1]),
        ["layers " + POSITIONAL],
    ),
    (
        "predict_zero_layer_nullity",
        lambda: predict_zero_layer_nullity(DEEP, W_ZERO, layers=[0, 1]),
        lambda: predict_zero_layer_nullity(DEEP, W_ZERO, [0, 1]),
        ["layers " + POSITIONAL],
    ),
    (
        "CurvatureOptions",
        lambda: lg.CurvatureOptions(solver="dense"),
        lambda: lg.CurvatureOptions(method="dense"),
        ["'method' is now called 'solver'"],
    ),
    (
        "KernelChangeOptions",
        lambda: lg.KernelChangeOptions(solver="arpack", num_eigenvalues=2),
        lambda: lg.KernelChangeOptions(method="arpack", k=2),
        ["'method' is now called 'solver'", "'k' is now called 'num_eigenvalues'"],
    ),
]


@pytest.mark.parametrize(
    ("new", "old", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_new_style_is_silent_and_old_style_warns_with_the_same_result(new, old, expected):
    with warnings.catch_warnings():
        for pattern in _OURS:
            warnings.filterwarnings("error", message=pattern, category=DeprecationWarning)
        current = new()
    with pytest.warns(DeprecationWarning) as caught:
        former = old()
    messages = [
        str(w.message)
        for w in caught
        if issubclass(w.category, DeprecationWarning)
        and any(re.match(p, str(w.message)) for p in _OURS)
    ]
    assert len(messages) == len(expected), messages
    for pattern, message in zip(expected, messages, strict=True):
        assert re.search(pattern, message), (pattern, message)
    assert _plain(former) == _plain(current)


_WRAPPER_CODE = deprecated_call_style()(lambda: None).__code__
TESTED_ELSEWHERE = {"certify_plstar", "evaluate_point"}  # tests/test_compat.py


def _deprecated_call_styles() -> set[str]:
    """Every public function (or class, by its ``__init__``) that keeps an old call style."""
    found = set()
    for info in pkgutil.walk_packages(lg.__path__, "lossgeometry."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            fn = obj.__init__ if inspect.isclass(obj) else obj
            if not name.startswith("_") and getattr(fn, "__code__", None) is _WRAPPER_CODE:
                found.add(obj.__name__)  # not an alias such as ``CO``
    return found


def test_the_table_covers_every_function_with_an_old_call_style():
    rows = {c[0].split()[0] for c in CASES}
    assert _deprecated_call_styles() - TESTED_ELSEWHERE == rows
    # the warnings point at the caller (this file), not at lossgeometry
    with pytest.warns(DeprecationWarning) as caught:
        lg.hessian_trace(PB, W, method="exact")
    assert caught[0].filename == __file__


def test_old_and_new_name_together_is_an_error():
    with pytest.raises(TypeError, match="both 'method'"):
        lg.hessian_spectrum(PB, W, solver="dense", method="dense")
    with pytest.raises(TypeError, match="both 'w_star'"):
        lg.loss_growth(SMALL, W_STAR, w_star=W_STAR)
    with pytest.raises(TypeError, match="multiple values for argument 'steps'"):
        lg.walk_manifold(SMALL, W_STAR, 2, 0.05, steps=3)


def test_a_former_option_name_in_a_table_names_the_new_one():
    with pytest.raises(OptionsError, match="method: unknown option; did you mean 'solver'"):
        lg.KernelChangeOptions.from_mapping({"method": "dense"}, where="report.kernel")
    with pytest.raises(OptionsError, match="did you mean 'num_eigenvalues'"):
        lg.KernelChangeOptions().replace(k=2)
    assert lg.KernelChangeOptions.former_names == {"method": "solver", "k": "num_eigenvalues"}
