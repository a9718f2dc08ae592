"""Loss Hessian / GGN / model-Hessian operators against dense float64 autograd oracles."""

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch
from torch.autograd.functional import hessian

import lossgeometry as lg
from tests.conftest import tiny_cnn, tiny_mlp
from tests.oracles.dense import dense_hessian, dense_jacobian


def make(model="mlp", loss="mse", reduction=None, n=7, chunk_size=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    if model == "mlp":
        net, X = (
            tiny_mlp(d_in=3, width=5, d_out=3),
            torch.randn(n, 3, generator=g, dtype=torch.float64),
        )
    else:
        net, X = (
            tiny_cnn(channels=2, classes=3),
            torch.randn(n, 1, 6, 6, generator=g, dtype=torch.float64),
        )
    if loss == "mse":
        Y = torch.randn(n, 3, generator=g, dtype=torch.float64)
    else:
        Y = torch.randint(0, 3, (n,), generator=g)
    return lg.Problem(net, X, Y, loss=loss, reduction=reduction, chunk_size=chunk_size)


def dense_ggn(problem, w):
    """Σ_i J_iᵀ Λ_i J_i with Λ written out by hand (identity·c for MSE, softmax form for CE)."""
    n, k = problem.n, problem.k
    J = dense_jacobian(problem, w).reshape(n, k, -1)
    if problem.is_mse:
        c = problem.loss_scale
        return c * torch.einsum("iap,iaq->pq", J, J)
    pi = problem.F(w).softmax(-1)
    Lam = torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]
    G = torch.einsum("iap,iab,ibq->pq", J, Lam, J)
    return G / n if problem.reduction == "mean" else G


def dense_dLdF(problem, w):
    F = problem.F(w)
    if problem.is_mse:
        return problem.loss_scale * (F - problem.targets())
    pi = F.softmax(-1)
    onehot = torch.nn.functional.one_hot(problem.targets(), problem.k).double()
    return (pi - onehot) / (problem.n if problem.reduction == "mean" else 1)


CASES = [
    ("mlp", "mse", "sum"),
    ("mlp", "mse", "mean"),
    ("mlp", "cross_entropy", "mean"),
    ("cnn", "mse", "sum"),
    ("cnn", "cross_entropy", "sum"),
]


@pytest.mark.parametrize("model,loss,reduction", CASES)
@pytest.mark.parametrize("backend", ["revrev", "fwdrev"])
def test_loss_hessian_matches_dense(model, loss, reduction, backend):
    P = make(model, loss, reduction, chunk_size=3)  # three chunks
    w = P.params() + 0.1
    Hd = dense_hessian(P, w)
    H = lg.hessian_operator(P, w, backend=backend)
    assert H.shape == (P.p, P.p) and H.dtype == np.float64
    torch.testing.assert_close(H.to_dense(), Hd, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("model,loss,reduction", CASES)
def test_ggn_and_the_split_of_the_loss_hessian(model, loss, reduction):
    P = make(model, loss, reduction)
    w = P.params()
    G = lg.hessian_operator(P, w, of="ggn").to_dense()
    torch.testing.assert_close(G, dense_ggn(P, w), atol=1e-12, rtol=1e-10)
    # ∇²L = G + Σ_ia (∂L/∂F_ia) ∇²F_ia
    M = lg.model_hessian_operator(P, w, dense_dLdF(P, w)).to_dense()
    torch.testing.assert_close(G + M, dense_hessian(P, w), atol=1e-12, rtol=1e-10)
    assert torch.linalg.eigvalsh(G).min() > -1e-12  # GGN is PSD for convex losses


def test_scipy_protocol_float64_request_and_cache():
    net = tiny_mlp(d_in=3, width=6, d_out=2).float()
    X, Y = torch.randn(9, 3), torch.randn(9, 2)
    P32 = lg.Problem(net, X, Y)
    H = lg.hessian_operator(P32, dtype=torch.float64)
    assert H.dtype == np.float64 and H.torch_dtype == torch.float64
    P64 = P32.to(dtype=torch.float64)
    Hd = dense_hessian(P64, P64.params())
    v = np.random.default_rng(0).standard_normal(P32.p)
    np.testing.assert_allclose(H @ v, Hd.numpy() @ v, atol=1e-10)
    np.testing.assert_allclose(H.matmat(np.eye(P32.p)[:, :4]), Hd.numpy()[:, :4], atol=1e-10)
    top = sla.eigsh(H, k=1, which="LA", return_eigenvectors=False)[0]
    assert top == pytest.approx(float(torch.linalg.eigvalsh(Hd)[-1]), rel=1e-8)
    # float32 operator agrees to float32 accuracy; cached and uncached graphs agree
    H32c = lg.hessian_operator(P32, cache=True)
    H32n = lg.hessian_operator(P32, cache=False)
    v32 = torch.randn(P32.p)
    a, b = H32c.matvec_torch(v32), H32n.matvec_torch(v32)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(H32c.matvec_torch(v32), a)  # reuse of the cached graph
    torch.testing.assert_close(a.double(), Hd @ v32.double(), atol=1e-4, rtol=1e-4)
    assert H32c.matvecs == 2


def test_minibatch_hessian_is_the_hessian_of_the_minibatch_loss():
    P = make("mlp", "cross_entropy", "mean", n=8)
    w = P.params()
    idx = [1, 4, 6]
    H = lg.hessian_operator(P, w, indices=idx).to_dense()
    Hd = hessian(lambda w_: P.chunk_loss_sum(w_, P.batch()[0][idx], P.batch()[1][idx]) / 3, w)
    torch.testing.assert_close(H, Hd, atol=1e-12, rtol=1e-10)


def test_model_hessian_operator_matches_dense_contraction():
    P = make("cnn", "mse", "sum", n=4)
    w = P.params()
    u = torch.randn(4, 3, dtype=torch.float64)
    Md = hessian(lambda w_: (P.forward(w_, P.batch()[0]) * u).sum(), w)
    for backend in ("revrev", "fwdrev"):
        M = lg.model_hessian_operator(P, w, u, backend=backend, chunk_size=3)
        torch.testing.assert_close(M.to_dense(), Md, atol=1e-12, rtol=1e-10)
        # new output weights must not reuse the graphs cached for the old ones
        M.set_u(2 * u + 1)
        M2d = hessian(lambda w_: (P.forward(w_, P.batch()[0]) * (2 * u + 1)).sum(), w)
        torch.testing.assert_close(M.to_dense(), M2d, atol=1e-12, rtol=1e-10)
    # raw inputs instead of the data
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    u2 = torch.randn(2, 3, dtype=torch.float64)
    M2 = lg.model_hessian_operator(P, w, u2, inputs=x).to_dense()
    torch.testing.assert_close(M2, hessian(lambda w_: (P.forward(w_, x) * u2).sum(), w))
    with pytest.raises(ValueError, match="shape"):
        lg.model_hessian_operator(P, w, torch.zeros(3, 3))


def test_linear_model_has_zero_model_hessian_and_constant_loss_hessian():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2).double()
    X, Y = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    P = lg.Problem(net, X, Y)
    M = lg.model_hessian_operator(P, None, torch.randn(6, 2, dtype=torch.float64))
    assert torch.count_nonzero(M.to_dense()) == 0
    J = dense_jacobian(P, P.params())
    torch.testing.assert_close(lg.hessian_operator(P).to_dense(), J.T @ J)


def test_bad_arguments():
    P = make()
    with pytest.raises(ValueError, match="of must be"):
        lg.hessian_operator(P, of="hessian")
    with pytest.raises(ValueError, match="backend"):
        lg.hessian_operator(P, backend="nope")
    with pytest.raises(TypeError, match="Problem"):
        lg.hessian_operator("not a problem")
    with pytest.raises(ValueError, match="GiB"):
        from lossgeometry.linalg import CallableOperator

        CallableOperator(lambda V: V, 10**6).to_dense()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_automatic_graph_cache_over_several_chunks(model):
    P = make(model, loss="cross_entropy", n=10, chunk_size=3)  # 4 chunks
    w = P.params()
    Hd = dense_hessian(P, w)
    v = torch.randn(P.p, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    big = lg.hessian_operator(P, w)  # default budget: all four graphs are kept
    small = lg.hessian_operator(P, w, cache_bytes=1)  # nothing fits: rebuilt every product
    for H in (big, small):
        for _ in range(2):  # the second product reuses (or rebuilds) the graphs
            torch.testing.assert_close(H.matvec_torch(v), Hd @ v, atol=1e-10, rtol=1e-10)
    assert big._hvp.cache is True and len(big._hvp._graphs) == 4
    assert small._hvp.cache is False and small._hvp._graphs is None
    # the measured size of one chunk's graph: at least its activations, at most a few
    # copies of everything the forward and backward passes touch
    nbytes = big._hvp.graph_bytes
    assert 3 * 8 <= nbytes < 10**6
