"""The model-Hessian norm ‖D²F‖ against dense computations and closed forms."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.autograd.functional import hessian

import lossgeometry as lg
from tests.conftest import tiny_mlp


def output_hessians(P, w, X):
    """All ∇²F_j (j over the n·k outputs) as a dense (nk, p, p) tensor."""

    def flat(w_):
        return P.forward(w_, X).reshape(-1)

    N = flat(w).numel()
    return torch.stack([hessian(lambda w_, j=j: flat(w_)[j], w) for j in range(N)])


def spec_norm(M):
    return float(torch.linalg.eigvalsh(M).abs().max())


def circle_oracle(Hs, num=721):
    """sup over unit u in R² of ‖u1 H1 + u2 H2‖ by a fine grid plus golden refinement."""
    assert Hs.shape[0] == 2
    f = lambda t: spec_norm(math.cos(t) * Hs[0] + math.sin(t) * Hs[1])  # noqa: E731
    ts = np.linspace(0, math.pi, num)
    vals = [f(t) for t in ts]
    i = int(np.argmax(vals))
    a, b = ts[max(i - 1, 0)], ts[min(i + 1, num - 1)]
    for _ in range(60):
        m1, m2 = a + (b - a) * 0.382, a + (b - a) * 0.618
        a, b = (m1, b) if f(m1) < f(m2) else (a, m2)
    return max(max(vals), f((a + b) / 2))


def problem(n=2, d_out=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(n, d_out, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(d_in=3, width=4, d_out=d_out, seed=seed), X, Y)


@pytest.mark.parametrize("n,k", [(2, 1), (1, 2)])
def test_norm_matches_dense_oracle_two_outputs(n, k):
    P = problem(n=n, d_out=k)
    w = P.params()
    Hs = output_hessians(P, w, P.batch()[0])
    exact = circle_oracle(Hs)
    r = lg.model_hessian_norm(P, w, tol=1e-8, maxiter=200, restarts=3)
    assert r.norm == pytest.approx(exact, rel=1e-6)
    # the returned u attains the value: ‖M_u‖ = norm
    u = torch.as_tensor(r.u).reshape(-1)
    assert spec_norm(torch.einsum("j,jpq->pq", u, Hs)) == pytest.approx(r.norm, rel=1e-6)


def test_norm_many_outputs_against_dense_alternation_and_bounds():
    P = problem(n=3, d_out=2, seed=1)
    w = P.params()
    Hs = output_hessians(P, w, P.batch()[0])  # (6, p, p)
    r = lg.model_hessian_norm(P, w, tol=1e-8, maxiter=150, restarts=3)
    each = lg.model_hessian_norm(P, w, tol=1e-6, restarts=1, per_sample=True)
    # dense multi-start alternating maximization with exact eigensolves (the same fixed points)
    g = torch.Generator().manual_seed(5)
    best = 0.0
    for _ in range(3):
        u = torch.randn(6, generator=g, dtype=torch.float64)
        u /= u.norm()
        for _ in range(150):
            ev, U = torch.linalg.eigh(torch.einsum("j,jpq->pq", u, Hs))
            v = U[:, ev.abs().argmax()]
            gv = torch.einsum("p,jpq,q->j", v, Hs, v)
            u = gv / gv.norm()
        best = max(best, float(gv.norm()))
    assert r.norm >= best * (1 - 1e-5)
    # sandwich: max_i β_i ≤ β ≤ sqrt(Σ β_i²), and β ≥ every single output's norm
    b = np.asarray(each.per_sample_norms)
    assert b.shape == (3,)
    assert b.max() <= r.norm * (1 + 1e-6) and r.norm <= np.sqrt((b**2).sum()) * (1 + 1e-4)
    assert r.norm >= max(spec_norm(H) for H in Hs) * (1 - 1e-6)
    # every per-sample value is attained, so it cannot exceed the dense upper bound
    # (Σ_a ‖∇²F_ia‖²)^{1/2}; it may be a local maximum below the best single output
    for i in range(3):
        assert b[i] <= math.sqrt(sum(spec_norm(Hs[2 * i + a]) ** 2 for a in range(2))) * (1 + 1e-6)


def test_single_input_per_sample_norm_is_the_hessian_spectral_norm():
    P = problem(n=3, d_out=1)
    w = P.params()
    x = P.batch()[0][1]
    r = lg.model_hessian_norm(P, w, inputs=x, tol=1e-10)
    Hx = hessian(lambda w_: P.forward(w_, x[None]).sum(), w)
    assert r.per_sample and r.n_inputs == 1
    assert r.norm == pytest.approx(spec_norm(Hx), rel=1e-8)
    # the same through indices
    r2 = lg.model_hessian_norm(P, w, indices=[1], tol=1e-10)
    assert r2.per_sample and r2.norm == pytest.approx(r.norm, rel=1e-8)
    assert not lg.model_hessian_norm(P, w, tol=1e-6).per_sample


class Quadratic(nn.Module):
    """f(w; x) = ½ Σ_j x_j w_j²: ∇²f = diag(x), sup_u ‖Σ_i u_i diag(x_i)‖ = max_j ‖X[:, j]‖."""

    def __init__(self, p):
        super().__init__()
        self.w = nn.Parameter(torch.randn(p, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * (x * self.w**2).sum(-1, keepdim=True)


def test_closed_form_diagonal_model():
    # every coordinate vector e_j is a local maximizer (value ‖X[:, j]‖): a lower bound from
    # local search lands on one of them; enough restarts find the largest
    torch.manual_seed(0)
    X = torch.randn(5, 6, dtype=torch.float64)
    P = lg.Problem(Quadratic(6), X, torch.zeros(5, 1, dtype=torch.float64))
    cols = X.norm(dim=0)
    r = lg.model_hessian_norm(P, tol=1e-10, maxiter=400, restarts=12)
    assert all(min(abs(val - cols)) < 1e-6 for val in r.restart_values)
    assert r.norm == pytest.approx(float(cols.max()), rel=1e-8)


def test_linear_model_has_zero_norm():
    torch.manual_seed(0)
    P = lg.Problem(nn.Linear(3, 2).double(), torch.randn(5, 3).double(), torch.randn(5, 2).double())
    r = lg.model_hessian_norm(P)
    assert r.norm == 0.0 and r.converged


def test_u0_start_is_a_guaranteed_lower_bound_and_float32_default():
    torch.manual_seed(0)
    net = tiny_mlp(d_in=3, width=8, d_out=2).float()
    X, Y = torch.randn(10, 3), torch.randn(10, 2)
    P = lg.Problem(net, X, Y)
    r = P.residual()
    res = lg.model_hessian_norm(P, u0=r, restarts=0)
    P64 = P.to(dtype=torch.float64)
    Mr = lg.model_hessian_operator(P64, None, r.double()).to_dense()
    assert res.norm >= spec_norm(Mr) / float(r.norm()) * (1 - 1e-4)
    # the float32 value is attained: ‖M_u‖ at the returned u, in float64, equals it
    full = lg.model_hessian_norm(P, restarts=2)
    u = torch.as_tensor(full.u)
    Mu = lg.model_hessian_operator(P64, None, u).to_dense()
    assert full.norm == pytest.approx(spec_norm(Mu), rel=1e-3)


def test_bad_inputs():
    P = problem()
    with pytest.raises(ValueError, match="shape"):
        lg.model_hessian_norm(P, inputs=torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="either"):
        lg.model_hessian_norm(P, inputs=torch.zeros(3, dtype=torch.float64), indices=[0])
    with pytest.raises(ValueError, match="restarts"):
        lg.model_hessian_norm(P, restarts=0)
