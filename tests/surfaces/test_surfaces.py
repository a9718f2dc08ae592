"""Loss surfaces and paths against closed forms (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.surfaces import (
    evaluate_points,
    filter_normalize,
    hessian_directions,
    trajectory_pca,
)


def _linear_problem(n: int = 24, d: int = 4, k: int = 2) -> lg.Problem:
    g = torch.Generator().manual_seed(3)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    return lg.Problem(nn.Linear(d, k).double(), X, Y, chunk_size=7)


def _relu_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))


def _relu_problem(model: nn.Module, loss: str = "mse") -> lg.Problem:
    g = torch.Generator().manual_seed(5)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(30, 2, generator=g, dtype=torch.float64)
    if loss == "cross_entropy":
        Y = torch.randint(0, 2, (30,), generator=g)
    return lg.Problem(model.double(), X, Y, loss, chunk_size=11)


def test_the_plane_of_a_linear_model_is_its_exact_quadratic():
    problem = _linear_problem()
    w = problem.params()
    g = torch.Generator().manual_seed(1)
    d1 = torch.randn(problem.p, generator=g, dtype=torch.float64)
    d2 = torch.randn(problem.p, generator=g, dtype=torch.float64)
    opts = lg.SurfaceOptions(points=9, xrange=(-2.0, 1.5), yrange=(-1.0, 3.0), batch_points=4)
    s = lg.loss_surface(problem, w, directions=(d1, d2), options=opts)
    # F is linear in the parameters: L(w + x d1 + y d2) = ½‖r + x J d1 + y J d2‖²
    r = problem.residual(w)
    u1, u2 = problem.jvp(w, d1), problem.jvp(w, d2)
    for i, y in enumerate(s.y):
        for j, x in enumerate(s.x):
            exact = 0.5 * float((r + x * u1 + y * u2).pow(2).sum())
            assert abs(s.loss[i, j] - exact) <= 1e-10 * max(1.0, exact)
    assert s.loss.shape == (9, 9) and s.directions == "given" and s.evaluation == "vmap"
    assert s.center_loss == pytest.approx(float(problem.loss(w)), abs=1e-12)


def test_random_directions_are_filter_normalized_with_biases_zero():
    problem = _relu_problem(_relu_net())
    w = problem.params()
    d = lg.filter_normalized_direction(problem, w, seed=4)
    wp, dp = problem.param_dict(w), problem.param_dict(d)
    for s in problem.param_specs:
        if len(s.shape) == 1:
            assert torch.count_nonzero(dp[s.name]) == 0
        else:
            torch.testing.assert_close(
                dp[s.name].norm(dim=1), wp[s.name].norm(dim=1), rtol=1e-9, atol=0
            )
    assert not torch.equal(d, lg.filter_normalized_direction(problem, w, seed=5))
    copied = filter_normalize(problem, w, direction=torch.ones(problem.p), ignore="none")
    torch.testing.assert_close(copied[-2:], w[-2:])  # the last bias is copied from w


def test_filter_normalized_surface_is_invariant_to_relu_rescaling():
    model = _relu_net()
    problem = _relu_problem(model)
    rescaled = _relu_net().double()  # rescaled in float64: the reparameterization is exact
    c = 7.5
    with torch.no_grad():  # layer 1 (rows and bias) times c, layer 2's columns over c
        rescaled[0].weight.mul_(c)
        rescaled[0].bias.mul_(c)
        rescaled[2].weight.div_(c)
    problem2 = _relu_problem(rescaled)
    opts = lg.SurfaceOptions(points=7, seed=11)
    a = lg.loss_surface(problem, options=opts)
    b = lg.loss_surface(problem2, options=opts)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-10, atol=1e-12)
    # without filter normalization (plain Gaussian directions) the plot changes
    g = torch.Generator().manual_seed(0)
    raw = (torch.randn(problem.p, generator=g), torch.randn(problem.p, generator=g))
    c1 = lg.loss_surface(problem, directions=raw, options=opts)
    c2 = lg.loss_surface(problem2, directions=raw, options=opts)
    assert np.max(np.abs(c1.loss - c2.loss)) > 1e-3


def test_vmapped_and_chunked_evaluation_agree_with_accuracy():
    problem = _relu_problem(_relu_net(1), "cross_entropy")
    w = problem.params()
    g = torch.Generator().manual_seed(2)
    W = w + 0.3 * torch.randn(13, problem.p, generator=g, dtype=torch.float64)
    Lv, Av, used_v = evaluate_points(problem, W, accuracy=True, evaluation="vmap")
    Lc, Ac, used_c = evaluate_points(problem, W, accuracy=True, evaluation="chunks")
    assert (used_v, used_c) == ("vmap", "chunks")
    torch.testing.assert_close(Lv, Lc, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Av, Ac, rtol=0, atol=1e-15)
    for j in range(3):  # against the Problem's own loss and an argmax count
        assert float(Lv[j]) == pytest.approx(float(problem.loss(W[j])), rel=1e-12)
        x, y = problem.batch()
        acc = (problem.forward(W[j], x).argmax(1) == y).double().mean()
        assert float(Av[j]) == pytest.approx(float(acc), abs=1e-15)


class _NoVmap(nn.Module):
    """A model vmap cannot run (``.item()`` on a batched tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        return out * 2 if float(out.abs().max().item()) > 1e6 else out


def test_auto_falls_back_to_chunks_when_vmap_fails():
    problem = _relu_problem(_NoVmap())
    opts = lg.SurfaceOptions(points=4)
    s = lg.loss_surface(problem, options=opts)
    assert s.evaluation == "chunks"
    ref = lg.loss_surface(problem, options=opts.replace(evaluation="chunks"))
    np.testing.assert_array_equal(s.loss, ref.loss)
    with pytest.raises(RuntimeError):
        lg.loss_surface(problem, options=opts.replace(evaluation="vmap"))


class _Counting(nn.Module):
    """Counts forward passes; raises after ``limit`` of them (a simulated kill)."""

    def __init__(self, inner: nn.Module, limit: int | None = None) -> None:
        super().__init__()
        self.inner, self.calls, self.limit = inner, 0, limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.limit is not None and self.calls > self.limit:
            raise KeyboardInterrupt("killed")
        return self.inner(x)


def test_an_interrupted_surface_resumes_without_recomputing_finished_rows(tmp_path):
    ck = tmp_path / "rows.json"
    opts = lg.SurfaceOptions(points=6, evaluation="chunks")
    chunks = 3  # 30 samples in chunks of 11
    model = _Counting(_relu_net(2).double(), limit=6 * chunks * 2 + 5)  # dies in row 3
    problem = _relu_problem(model)
    with pytest.raises(KeyboardInterrupt):
        lg.loss_surface(problem, options=opts, checkpoint=ck)
    model.calls, model.limit = 0, None
    s = lg.loss_surface(problem, options=opts, checkpoint=ck)
    assert s.resumed_rows == 2 and s.evaluated_points == 4 * 6
    assert model.calls == 4 * 6 * chunks + chunks  # remaining rows, then the centre L(w)
    model.calls = 0
    fresh = lg.loss_surface(problem, options=opts)
    np.testing.assert_array_equal(s.loss, fresh.loss)
    again = lg.loss_surface(problem, options=opts, checkpoint=ck)
    assert again.evaluated_points == 0 and again.resumed_rows == 6
    # a different surface (another seed) does not reuse the rows
    other = lg.loss_surface(problem, options=opts.replace(seed=1), checkpoint=ck)
    assert other.resumed_rows == 0


def test_pca_directions_project_the_trajectory_on_its_plane():
    problem = _relu_problem(_relu_net(3))
    traj = lg.train(problem, "gd", steps=20, lr=0.02, record_every=2, record_iterates=True)
    its = traj.iterates
    s = lg.loss_surface(
        problem,
        traj.w_final,
        options=lg.SurfaceOptions(directions="pca", points=5),
        trajectory=traj,
    )
    D, coords, ratio = trajectory_pca(its, traj.w_final)
    assert torch.allclose(D.T @ D, torch.eye(2, dtype=D.dtype), atol=1e-12)
    np.testing.assert_allclose(s.trajectory, coords)
    assert s.trajectory[-1] == pytest.approx([0.0, 0.0], abs=1e-12)  # the end is the centre
    # the plane holds the run to its explained variance: rebuild the points from the plane
    M = its - traj.w_final
    resid = (M - M.mean(0)) - (M - M.mean(0)) @ D @ D.T
    total = (M - M.mean(0)).pow(2).sum()
    assert float(1 - resid.pow(2).sum() / total) == pytest.approx(float(ratio.sum()), rel=1e-9)
    assert s.x[0] < coords[:, 0].min() and s.x[-1] > coords[:, 0].max()
    with pytest.raises(ValueError, match="iterates"):
        lg.loss_surface(problem, options=lg.SurfaceOptions(directions="pca"))


def test_hessian_directions_are_eigenvectors():
    problem = _relu_problem(_relu_net(4))
    w = problem.params()
    V, values = hessian_directions(problem, w, top=2)
    H = lg.hessian_operator(problem, w).to_dense()
    ev = torch.linalg.eigvalsh(H)
    assert values == pytest.approx(ev.flip(0)[:2].numpy(), rel=1e-7)
    for j in range(2):
        assert float((H @ V[:, j] - values[j] * V[:, j]).norm()) < 1e-6 * float(ev.abs().max())
    s = lg.loss_surface(problem, w, options=lg.SurfaceOptions(directions="hessian", points=3))
    assert s.eigenvalues is not None and s.cosine == pytest.approx(0.0, abs=1e-8)


def test_paths_interpolation_and_slices():
    problem = _linear_problem()
    w0 = problem.params()
    w1 = w0 + 0.5
    p = lg.loss_path(problem, w0, end=w1, options=lg.SurfaceOptions(points=11, xrange=(0, 1)))
    ends = [float(problem.loss(w0)), float(problem.loss(w1))]
    assert [p.loss[0], p.loss[-1]] == pytest.approx(ends, rel=1e-12)
    r, u = problem.residual(w0), problem.jvp(w0, w1 - w0)  # the exact parabola
    exact = [0.5 * float((r + t * u).pow(2).sum()) for t in p.t]
    np.testing.assert_allclose(p.loss, exact, rtol=1e-10)
    s = p.summary()
    assert s["loss_start"] == pytest.approx(ends[0]) and s["loss_end"] == pytest.approx(ends[1])
    assert s["barrier"] <= 1e-10  # a convex loss stays below its chord
    wide = lg.loss_path(problem, w0, end=w1, options=lg.SurfaceOptions(points=5))
    assert 0.0 in wide.t and 1.0 in wide.t and len(wide.t) == 7  # the ends are on the curve
    assert wide.loss[list(wide.t).index(1.0)] == pytest.approx(ends[1], rel=1e-12)
    g = lg.loss_path(problem, w0, options=lg.SurfaceOptions(directions="gradient", points=5))
    assert g.direction_norm == pytest.approx(1.0)
    assert g.loss[-1] > g.loss[2] > g.loss[0]  # the loss rises along the gradient
    with pytest.raises(ValueError, match="a path takes"):
        lg.loss_path(problem, options=lg.SurfaceOptions(directions="pca"))
    with pytest.raises(ValueError, match="a surface takes"):
        lg.loss_surface(problem, options=lg.SurfaceOptions(directions="gradient"))


def test_results_round_trip_and_plots_draw_their_fields(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problem = _relu_problem(_relu_net(5), "cross_entropy")
    traj = lg.train(problem, "gd", steps=6, lr=0.1, record_iterates=True)
    s = lg.loss_surface(
        problem,
        traj.w_final,
        options=lg.SurfaceOptions(directions="pca", points=4, accuracy=True),
        trajectory=traj,
    )
    back = lg.load_result(s.save(tmp_path / "s.json"))
    assert isinstance(back, lg.LossSurface)
    np.testing.assert_array_equal(back.loss, s.loss)
    np.testing.assert_array_equal(back.accuracy, s.accuracy)
    np.testing.assert_array_equal(back.trajectory, s.trajectory)
    assert back.summary() == s.summary()
    ax = s.plot()
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "trajectory")
    np.testing.assert_array_equal(line.get_xydata(), s.trajectory)
    assert ax.texts  # labelled contour levels
    ax3 = s.plot(kind="surface3d")
    assert ax3.name == "3d"
    p = lg.loss_path(problem, traj.w0, end=traj.w_final, options=lg.SurfaceOptions(points=5))
    pb = lg.load_result(p.save(tmp_path / "p.json"))
    np.testing.assert_array_equal(pb.loss, p.loss)
    ax = p.plot()
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), p.loss)
    end = next(ln for ln in ax.get_lines() if ln.get_label().startswith("t = 1"))
    assert end.get_ydata()[0] == pytest.approx(p.summary()["loss_end"])
    plt.close("all")


def test_options_are_checked():
    with pytest.raises(lg.options.OptionsError, match="points"):
        lg.SurfaceOptions(points=1)
    with pytest.raises(lg.options.OptionsError, match="xrange"):
        lg.SurfaceOptions(xrange=(1.0, -1.0))
    with pytest.raises(ValueError, match="cross-entropy"):
        lg.loss_surface(_linear_problem(), options=lg.SurfaceOptions(accuracy=True, points=2))
