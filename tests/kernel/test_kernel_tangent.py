"""tangent_kernel against the dense float64 oracle, for every method and architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.kernel.structured import build_plan
from tests.kernel.kernel_oracle import oracle_kernel, rel_err

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

METHODS = ["structured", "jacobian", "ntvp"]


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp_problem(n: int = 5, **kw) -> lg.Problem:
    model = lg.models.mlp(4, 7, 2, 3, parameterization="ntk", seed=0).double()
    X = torch.randn(n, 4, generator=_g(), dtype=torch.float64)
    Y = torch.randn(n, 3, generator=_g(1), dtype=torch.float64)
    return lg.Problem(model, X, Y, **kw)


def _cases():
    g = _g(3)
    yield "mlp-standard", lg.models.mlp(3, 6, 2, 2, seed=0), torch.randn(5, 3, generator=g)
    yield (
        "mlp-ntk-relu-sigmoid-out",
        lg.models.mlp(
            3,
            6,
            3,
            2,
            activation="relu",
            parameterization="ntk",
            output_activation="sigmoid",
            bottleneck=2,
            seed=1,
        ),
        torch.randn(4, 3, generator=g),
    )
    yield (
        "cnn2d-ntk",
        lg.models.cnn(1, (2, 3), 3, 2, input_size=6, parameterization="ntk", seed=0),
        torch.randn(3, 1, 6, 6, generator=g),
    )
    yield (
        "cnn1d-maxpool",
        lg.models.cnn(2, (3,), 3, 2, input_size=8, dim=1, pool="max", seed=0),
        torch.randn(3, 2, 8, generator=g),
    )
    yield (
        "resnet-layernorm",
        lg.models.resnet(
            1, num_classes=2, width=2, blocks=(1, 1), norm="layernorm", input_size=4, seed=0
        ),
        torch.randn(3, 1, 4, 4, generator=g),
    )
    yield (
        "transformer-tokens-classifier",
        lg.models.transformer(
            vocab_size=7, d_model=8, nhead=2, dim_feedforward=8, num_classes=2, max_len=5, seed=0
        ),
        torch.randint(0, 7, (3, 4), generator=g),
    )
    yield (
        "transformer-features-postln",
        lg.models.transformer(
            d_in=3,
            d_model=4,
            nhead=1,
            dim_feedforward=6,
            num_classes=2,
            max_len=4,
            norm_first=False,
            causal=False,
            seed=0,
        ),
        torch.randn(3, 4, 3, generator=g),
    )
    yield (
        "lstm-lm-unrolled",
        lg.models.lstm_lm(vocab_size=4, embed_dim=3, hidden_dim=4, num_layers=2, seed=0),
        torch.randint(0, 4, (3, 3), generator=g),
    )


CASES = {name: (model, X) for name, model, X in _cases()}


# the generic methods (jacobian, ntvp) share no per-layer code: three architectures suffice
GRID = [("structured", name) for name in CASES] + [
    (m, name)
    for m in ("jacobian", "ntvp")
    for name in ("mlp-ntk-relu-sigmoid-out", "cnn2d-ntk", "transformer-tokens-classifier")
]


@pytest.mark.parametrize(("method", "name"), GRID)
def test_kernel_matches_dense_oracle(name, method):
    model, X = CASES[name]
    model = model.double().eval()
    X = X.double() if X.is_floating_point() else X
    with torch.no_grad():
        out = model(X)
    pb = lg.Problem(model, X, torch.zeros_like(out))
    K0 = oracle_kernel(model, X)
    K = lg.tangent_kernel(pb, method=method)
    assert K.shape == K0.shape == (pb.n * pb.k, pb.n * pb.k)
    assert rel_err(K, K0) < 1e-10


def test_structured_plan_uses_rules_for_standard_layers():
    model, X = CASES["transformer-tokens-classifier"]
    pb = lg.Problem(model.double(), X, torch.zeros(X.shape[0], 2, dtype=torch.float64))
    plan = build_plan(pb)
    rules = {name: r.split("/")[0] for name, r in plan.describe()["layers"].items()}
    assert rules["embed"] == "embedding"
    assert rules["blocks.0.ln1"] == "layernorm"
    assert rules["blocks.0.attn.q"] == "linear"
    # positions are looked up without a batch dimension: exact fallback
    assert plan.fallback == ["pos.weight"]
    assert "batch" in plan.reasons["pos"]


def test_w_argument_and_model_untouched():
    pb = _mlp_problem()
    w0 = pb.params()
    w = w0 + 0.3 * torch.randn(pb.p, generator=_g(7), dtype=torch.float64)
    K = lg.tangent_kernel(pb, w)
    K_ref = oracle_kernel(pb.with_params(w).model, pb.batch()[0])
    assert rel_err(K, K_ref) < 1e-10
    assert torch.equal(pb.params(), w0)


def test_fixed_parameters_do_not_contribute():
    model = lg.models.mlp(4, 7, 2, 3, seed=0).double()
    X = torch.randn(5, 4, generator=_g(), dtype=torch.float64)
    names = ["fc1.bias", "fc2.weight", "out.weight"]
    pb = lg.Problem(model, X, torch.zeros(5, 3, dtype=torch.float64), params=names)
    K0 = oracle_kernel(model, X, names)
    for method in METHODS:
        assert rel_err(lg.tangent_kernel(pb, method=method), K0) < 1e-10


def test_chunking_does_not_change_the_kernel():
    pb = _mlp_problem(n=7)
    K = lg.tangent_kernel(pb)
    for cs in (1, 2, 3):
        assert rel_err(lg.tangent_kernel(pb, chunk_size=cs), K) < 1e-12
    # no cache of factors (forces recomputation per block)
    assert rel_err(lg.tangent_kernel(pb, chunk_size=2, max_memory=40_000), K) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_outputs_trace_subset_and_diagonal(method):
    pb = _mlp_problem(n=4)
    n, k = pb.n, pb.k
    K = oracle_kernel(pb.model, pb.batch()[0]).reshape(n, k, n, k)
    tr = lg.tangent_kernel(pb, method=method, outputs="trace")
    assert rel_err(tr, torch.einsum("iaja->ij", K)) < 1e-10
    sub = lg.tangent_kernel(pb, method=method, outputs=[2, 0])
    assert rel_err(sub, K[:, [2, 0]][:, :, :, [2, 0]].reshape(2 * n, 2 * n)) < 1e-10
    one = lg.tangent_kernel(pb, method=method, outputs=1)
    assert rel_err(one, K[:, 1, :, 1]) < 1e-10
    blocks = lg.tangent_kernel(pb, method=method, diagonal_only=True)
    assert blocks.shape == (n, k, k)
    assert rel_err(blocks, torch.stack([K[i, :, i] for i in range(n)])) < 1e-10
    dtr = lg.tangent_kernel(pb, method=method, outputs="trace", diagonal_only=True)
    assert rel_err(dtr, torch.einsum("iaia->i", K)) < 1e-10


def test_indices_subset():
    pb = _mlp_problem(n=6)
    idx = [4, 1, 2]
    K = lg.tangent_kernel(pb, indices=idx)
    K0 = oracle_kernel(pb.model, pb.batch()[0][idx])
    assert rel_err(K, K0) < 1e-10


def test_float32_problem_close_to_float64_oracle():
    model = lg.models.mlp(6, 32, 2, 3, parameterization="ntk", seed=0)
    X = torch.randn(8, 6, generator=_g())
    pb = lg.Problem(model, X, torch.zeros(8, 3))
    K = lg.tangent_kernel(pb)
    assert K.dtype == torch.float32
    K0 = oracle_kernel(model.double(), X.double())
    assert rel_err(K, K0) < 1e-5


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradient_kernel_identity(reduction):
    """‖∇L‖² = c² rᵀ K r with c = loss_scale: the kernel is reduction-independent."""
    pb = _mlp_problem(reduction=reduction)
    K = lg.tangent_kernel(pb)
    r = pb.residual().reshape(-1)
    g = pb.grad()
    c = pb.loss_scale
    assert float(g @ g) == pytest.approx(c**2 * float(r @ K @ r), rel=1e-10)
    # and the PL* bound ‖∇L‖² ≥ 2 c λ_min(K) L
    lmin = float(torch.linalg.eigvalsh(K)[0])
    assert float(g @ g) >= 2 * c * lmin * float(pb.loss()) * (1 - 1e-10)


def test_cross_entropy_problem_kernel_is_on_logits():
    model = lg.models.mlp(4, 5, 1, 3, seed=0).double()
    X = torch.randn(4, 4, generator=_g(), dtype=torch.float64)
    pb = lg.Problem(model, X, torch.tensor([0, 1, 2, 1]), loss="cross_entropy")
    assert rel_err(lg.tangent_kernel(pb), oracle_kernel(model, X)) < 1e-10


def test_loader_problem():
    from torch.utils.data import DataLoader, TensorDataset

    model = lg.models.mlp(4, 5, 1, 2, seed=0).double()
    X = torch.randn(6, 4, generator=_g(), dtype=torch.float64)
    Y = torch.zeros(6, 2, dtype=torch.float64)
    pb = lg.Problem.from_loader(model, DataLoader(TensorDataset(X, Y), batch_size=4))
    K0 = oracle_kernel(model, X)
    for method in METHODS:
        assert rel_err(lg.tangent_kernel(pb, method=method, chunk_size=4), K0) < 1e-10


def test_errors():
    pb = _mlp_problem()
    with pytest.raises(ValueError, match="unknown kernel method"):
        lg.tangent_kernel(pb, method="magic")
    with pytest.raises(ValueError, match="outputs must be"):
        lg.tangent_kernel(pb, outputs="diag")
    with pytest.raises(ValueError, match=r"lie in \[0, 2\]"):
        lg.tangent_kernel(pb, outputs=[0, 3])
    with pytest.raises(ValueError, match="distinct"):
        lg.tangent_kernel(pb, outputs=[1, 1])
    for bad in ([0.5], True, [], None, [True]):
        with pytest.raises(ValueError, match="outputs must be"):
            lg.tangent_kernel(pb, outputs=bad)
    K1 = lg.tangent_kernel(pb, outputs=np.int64(1))
    assert torch.equal(K1, lg.tangent_kernel(pb, outputs=torch.tensor([1])))
    with pytest.raises(ValueError, match="shape"):
        lg.tangent_kernel(pb, torch.zeros(3, dtype=torch.float64))


def test_train_mode_batchnorm_refused():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double()
    X = torch.randn(5, 3, generator=_g(), dtype=torch.float64)
    pb = lg.Problem(model, X, torch.zeros(5, 1, dtype=torch.float64), allow_batchnorm=True)
    with pytest.raises(ValueError, match=r"model\.eval"):
        lg.tangent_kernel(pb)
    model.eval()
    pb = lg.Problem(model, X, torch.zeros(5, 1, dtype=torch.float64))
    assert rel_err(lg.tangent_kernel(pb), oracle_kernel(model, X)) < 1e-10
