"""solution_manifold: rank, dimension and Hessian nullity against closed forms and dense oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from manifold_fixtures import interpolated, mlp_problem
from torch import nn

import lossgeometry as lg
from tests.oracles.dense import dense_hessian, dense_jacobian


def test_linear_model_affine_solution_set_has_dimension_p_minus_n() -> None:
    pr, w = interpolated("linear", n=6, d=15)
    rep = lg.solution_manifold(pr, w)
    assert rep.at_interpolant and rep.rank.rank == 6
    assert rep.dimension == rep.expected_dimension == 15 - 6
    assert rep.hessian_nullity == 9 and rep.agrees
    # singular values of J = X exactly
    sx = torch.linalg.svdvals(pr.batch()[0]).numpy()
    assert np.allclose(rep.singular_values, sx, rtol=1e-12)


def test_product_model_hyperbola_has_dimension_one() -> None:
    pr, w = interpolated("product")
    rep = lg.solution_manifold(pr, w)
    assert (rep.p, rep.nk, rep.dimension, rep.expected_dimension) == (2, 1, 1, 1)
    assert rep.hessian_nullity == 1
    a, b = w.tolist()
    # J = (b, a): the tangent of the hyperbola w1 w2 = 1 is (a, −b)/‖·‖
    t = rep.tangent_directions(1)[:, 0]
    expected = torch.tensor([a, -b], dtype=torch.float64) / np.hypot(a, b)
    assert torch.allclose(t.abs(), expected.abs(), atol=1e-12)
    assert rep.singular_values[0] == pytest.approx(np.hypot(a, b), rel=1e-12)


@pytest.mark.parametrize("n", [5, 20, 50])
def test_mlps_rank_nk_dimension_p_minus_nk_and_hessian_nullity(n: int) -> None:
    pr, w = interpolated("mlp", n=n, d=4, width=16, k=2)  # p = 114, nk = 2n
    rep = lg.solution_manifold(pr, w)
    nk = 2 * n
    assert rep.rank.rank == nk and rep.dimension == pr.p - nk == rep.expected_dimension
    assert rep.hessian_nullity == rep.dimension and rep.agrees
    assert rep.rank.gap > 1e6  # a clear gap between σ_min(J) and numerical zero
    # dense oracles: singular values of J and the Hessian spectrum c·σ² ∪ {0}
    J = dense_jacobian(pr, w)
    assert np.allclose(rep.singular_values, torch.linalg.svdvals(J).numpy(), rtol=1e-9)
    ev = np.sort(torch.linalg.eigvalsh(dense_hessian(pr, w)).numpy())[::-1]
    assert np.allclose(ev[:nk], np.sort(rep.singular_values**2)[::-1], rtol=1e-6)
    assert np.abs(ev[nk:]).max() < 1e-8 * ev[0]


def test_hessian_nullity_routes_agree() -> None:
    pr, w = interpolated("mlp", n=20, d=4, width=16, k=2)
    dense = lg.hessian_nullity(pr, w, solver="dense")
    rnd = lg.hessian_nullity(pr, w, solver="randomized", num=60)
    lan = lg.hessian_nullity(pr, w, solver="lanczos", num=60)
    assert dense.nullity == rnd.nullity == lan.nullity == pr.p - 40
    assert np.allclose(rnd.eigenvalues[:40], dense.eigenvalues[:40], rtol=1e-8)
    # too few probes: the randomized route cannot decide and says so with None
    assert lg.hessian_nullity(pr, w, solver="randomized", num=30).nullity is None


def test_matrix_free_route_matches_dense() -> None:
    pr, w = interpolated("mlp", n=20, d=4, width=16, k=2)
    dense = lg.solution_manifold(pr, w, hessian=False)
    free = lg.solution_manifold(pr, w, jacobian="matrix-free", hessian=False, num_singular=8)
    assert free.jacobian_method == "matrix-free" and not free.singular_values_complete
    assert free.rank.rank == dense.rank.rank == 40 and free.dimension == dense.dimension
    assert free.singular_values[0] == pytest.approx(dense.singular_values[0], rel=1e-8)
    assert np.allclose(free.singular_values[1:], dense.singular_values[-8:], rtol=1e-6)


def test_tangent_and_normal_directions() -> None:
    pr, w = interpolated("mlp", n=20, d=4, width=16, k=2)
    rep = lg.solution_manifold(pr, w, hessian=False)
    J = dense_jacobian(pr, w)
    T = rep.tangent_directions(5, seed=1)
    N = rep.normal_directions(4, seed=2)
    assert torch.allclose(T.T @ T, torch.eye(5, dtype=torch.float64), atol=1e-12)
    assert float((J @ T).abs().max()) < 1e-12 * float(J.abs().max())
    # normal directions lie in range Jᵀ: their tangent projection vanishes
    assert float(rep.project_tangent(N).norm()) < 1e-12
    # matrix-free projections agree with the dense ones (no p × p projector anywhere)
    free = lg.tangent_space(pr, w, jacobian="matrix-free")
    v = torch.randn(pr.p, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(free.project_tangent(v), rep.project_tangent(v), atol=1e-9)
    assert free.tangent_residual(free.project_tangent(v[:, 0])) < 1e-10


def test_rank_deficient_jacobian_with_duplicate_samples() -> None:
    pr0 = mlp_problem(n=6, d=3, width=8, k=1)
    X = torch.cat([pr0.batch()[0], pr0.batch()[0][:2]])  # two samples repeated, same targets
    Y = torch.cat([pr0.batch()[1], pr0.batch()[1][:2]])
    pr = lg.Problem(pr0.model, X, Y)
    sol = lg.find_interpolant(pr, progress=False)
    assert sol.success  # consistent equations: still solvable
    rep = lg.solution_manifold(pr, sol.w)
    assert rep.rank.rank == 6 and rep.dimension == pr.p - 6 != rep.expected_dimension
    assert rep.hessian_nullity == rep.dimension and not rep.agrees
    assert any("rank deficient" in n for n in rep.notes)


def test_non_interpolant_is_flagged_and_roundtrip(tmp_path) -> None:
    pr = mlp_problem(n=10, width=8, k=2)
    rep = lg.solution_manifold(pr, pr.params())
    assert not rep.at_interpolant and any("not an interpolant" in n for n in rep.notes)
    pr2, w = interpolated("linear", n=6, d=15)
    rep2 = lg.solution_manifold(pr2, w)
    back = lg.ManifoldReport.load(rep2.save(tmp_path / "rep.json"))
    assert isinstance(back.rank, lg.Rank) and back.dimension == rep2.dimension
    with pytest.raises(ValueError, match="loaded from disk"):
        back.tangent_directions(1)
    assert rep2.plot() is not None


def test_float32_model_and_mean_reduction() -> None:
    pr = mlp_problem(n=5, width=6, k=1)
    pr_mean = lg.Problem(
        pr.model.float(), pr.batch()[0].float(), pr.batch()[1].float(), reduction="mean"
    )
    sol = lg.find_interpolant(pr_mean, progress=False)
    rep = lg.solution_manifold(pr_mean, sol.w)
    assert rep.loss_scale == pytest.approx(2.0 / 5) and rep.agrees
    assert rep.hessian_nullity == pr.p - 5


def test_non_mse_is_refused() -> None:
    ce = lg.Problem(
        nn.Linear(3, 2).double(),
        torch.randn(4, 3, dtype=torch.float64),
        torch.tensor([0, 1, 0, 1]),
        loss="cross_entropy",
    )
    with pytest.raises(ValueError, match="squared loss"):
        lg.solution_manifold(ce, ce.params())
