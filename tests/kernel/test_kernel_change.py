"""The kernel study: spectra and relative change against dense float64 oracles; options; I/O."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.kernel.change import (
    KernelChange,
    KernelChangeOptions,
    choose_solver,
    kernel_change,
    kernel_size,
)
from lossgeometry.options import OptionsError
from tests.conftest import tiny_mlp
from tests.oracles.dense import dense_jacobian

matplotlib.use("Agg")


@pytest.fixture
def two_points():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(7, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(7, 2, generator=g, dtype=torch.float64)
    pb = lg.Problem(tiny_mlp(3, 6, 2), X, Y)
    w0 = pb.params()
    w1 = w0 + 0.3 * torch.randn(pb.p, generator=g, dtype=torch.float64)
    return pb, w0, w1


def _oracle_kernel(pb, w):
    J = dense_jacobian(pb, w)
    return J @ J.T


def test_dense_study_matches_the_oracle(two_points):
    pb, w0, w1 = two_points
    ch = kernel_change(pb, w0, w1, options=KernelChangeOptions(spectral_norm=True))
    K0, K1 = _oracle_kernel(pb, w0), _oracle_kernel(pb, w1)
    e0, e1 = torch.linalg.eigvalsh(K0), torch.linalg.eigvalsh(K1)
    assert ch.solver == "dense" and ch.size == kernel_size(pb) == 14
    np.testing.assert_allclose(ch.start.eigenvalues, e0.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ch.end.eigenvalues, e1.numpy(), rtol=1e-9, atol=1e-12)
    fro = float(torch.linalg.matrix_norm(K1 - K0) / torch.linalg.matrix_norm(K0))
    spec = float(torch.linalg.matrix_norm(K1 - K0, ord=2) / torch.linalg.matrix_norm(K0, ord=2))
    assert ch.relative_change == pytest.approx(fro, rel=1e-10)
    assert ch.relative_change_spectral == pytest.approx(spec, rel=1e-10)
    assert ch.pl_star_mu("start") == pytest.approx(2 * max(float(e0[0]), 0.0), rel=1e-9)
    assert ch.plan is not None and ch.plan["fallback"] == []
    # the spectral change is only computed on request
    assert math.isnan(kernel_change(pb, w0, w1).relative_change_spectral)


def test_single_point_trace_outputs_and_kernels(two_points):
    pb, w0, _ = two_points
    ch, kernels = kernel_change(
        pb, w0, options=KernelChangeOptions(outputs="trace"), return_kernels=True
    )
    J = dense_jacobian(pb, w0).reshape(pb.n, pb.k, pb.p)
    Kt = torch.einsum("iap,jap->ij", J, J)
    assert ch.end is None and math.isnan(ch.relative_change) and ch.size == pb.n
    torch.testing.assert_close(kernels["start"], Kt, rtol=1e-10, atol=1e-12)
    assert set(ch.summary()) >= {"lambda_min_w0", "condition_number_w0", "pl_star_mu_w0"}
    assert "relative_change" not in ch.summary()


def test_matrix_free_fallback_finds_the_extremes(two_points):
    pb, w0, w1 = two_points
    opts = KernelChangeOptions(max_size=5, tol=1e-10)
    assert choose_solver(kernel_size(pb), opts) == "lanczos"
    ch, kernels = kernel_change(pb, w0, w1, options=opts, return_kernels=True)
    e1 = torch.linalg.eigvalsh(_oracle_kernel(pb, w1))
    assert ch.solver == "lanczos" and kernels == {} and math.isnan(ch.relative_change)
    assert ch.end.lambda_max == pytest.approx(float(e1[-1]), rel=1e-8)
    assert ch.end.lambda_min == pytest.approx(float(e1[0]), rel=1e-6)
    assert ch.plan is None


def test_no_route_raises_and_solver_choice(two_points):
    pb, w0, _ = two_points
    off = KernelChangeOptions(max_size=5, matrix_free=False)
    assert choose_solver(14, off) is None
    with pytest.raises(ValueError, match="max_size = 5"):
        kernel_change(pb, w0, options=off)
    assert choose_solver(14, KernelChangeOptions(solver="arpack")) == "arpack"
    assert choose_solver(10**6, KernelChangeOptions(solver="dense")) == "dense"
    assert choose_solver(14, KernelChangeOptions(outputs="trace", max_size=5)) is None


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"tl": 1e-3}, r"\[report.kernel\] tl: unknown option; did you mean 'tol'"),
        ({"max_sise": 10}, "did you mean 'max_size'"),
        ({"num_eigenvalues": 0}, "num_eigenvalues = 0: must be at least 1"),
        ({"tol": 0.0}, "must be positive"),
        ({"solver": "power"}, "choose one of"),
        ({"outputs": "trace", "solver": "lanczos"}, "needs the dense kernel"),
        # the former names (renamed for one meaning per word) are hinted by their new ones
        ({"method": "lanczos"}, r"method: unknown option; did you mean 'solver'\?"),
        ({"k": 2}, r"k: unknown option; did you mean 'num_eigenvalues'\?"),
        ({"max_size": 1.5}, "expected an integer"),
    ],
)
def test_options_errors(data, msg):
    with pytest.raises(OptionsError, match=msg):
        KernelChangeOptions.from_mapping(data, where="report.kernel")


def test_result_round_trip_summary_and_plot(two_points, tmp_path):
    pb, w0, w1 = two_points
    ch = kernel_change(pb, w0, w1)
    path = ch.save(tmp_path / "kc.json")
    back = lg.load_result(path)
    assert isinstance(back, KernelChange) and isinstance(back.end, lg.KernelSpectrum)
    assert back.to_dict() == ch.to_dict()
    assert back.summary() == ch.summary()
    np.testing.assert_array_equal(back.start.eigenvalues, ch.start.eigenvalues)
    assert KernelChange.load(path).options == KernelChangeOptions().to_dict()
    ax = ch.plot()
    assert len(ax.get_lines()) == 2
    ax.figure.clf()
