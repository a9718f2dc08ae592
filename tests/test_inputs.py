"""Inputs of any shape (tensor, tuple, dict of tensors) and the losses "bce" and "nll".

Every measurement (loss, gradient, HVP, JVP/VJP, tangent kernel dense and matrix-free,
Hessian spectrum, trace) on a dict-input model and on a BCE model is compared with float64
oracles written here from plain autograd: the model is called directly (``model(**x)``), the
losses are torch's own modules (``nn.BCEWithLogitsLoss``, ``nn.NLLLoss``), and derivatives come
from ``torch.autograd.functional`` — no code path of the Problem.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.autograd.functional import hessian, jacobian
from torch.func import functional_call
from torch.utils.data import DataLoader, Dataset

import lossgeometry as lg

N, D, V, K = 7, 3, 5, 2
TOL = {"rtol": 1e-9, "atol": 1e-10}


class KeywordModel(nn.Module):
    """HuggingFace-style: called with keyword inputs (token ids and float features)."""

    def __init__(self, k: int = K) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 4)
        self.lin = nn.Linear(D, 4)
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(4, k))

    def forward(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(input_ids).mean(dim=1) + self.lin(features))


class PairModel(nn.Module):
    """Called with two positional inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(D, 4), nn.Linear(2, 4)
        self.out = nn.Linear(4, K)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.a(a) + self.b(b)))


class DictArgModel(PairModel):
    """Reads ``data["a"]`` from one dict argument (curvlinops style)."""

    def forward(self, data: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return super().forward(data["a"], data["b"])


def _data(seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = {
        "input_ids": torch.randint(0, V, (N, 3), generator=g),
        "features": torch.randn(N, D, generator=g, dtype=torch.float64),
    }
    return x, torch.randn(N, K, generator=g, dtype=torch.float64)


def _model(cls: type[nn.Module] = KeywordModel, **kw) -> nn.Module:
    torch.manual_seed(0)
    return cls(**kw).double()


# ---------------------------------------------------------------- oracles (plain autograd)
def _oracle_forward(model: nn.Module, X):
    names = [n for n, _ in model.named_parameters()]
    shapes = [t.shape for _, t in model.named_parameters()]
    sizes = [t.numel() for _, t in model.named_parameters()]

    def F(w):
        pd = {n: t.view(s) for n, t, s in zip(names, torch.split(w, sizes), shapes, strict=True)}
        if isinstance(X, dict):
            out = functional_call(model, pd, (), X)
        elif isinstance(X, tuple):
            out = functional_call(model, pd, X)
        else:
            out = functional_call(model, pd, (X,))
        return out.reshape(out.shape[0], -1)

    return F


def _oracle_loss(model: nn.Module, X, Y, loss: str, reduction: str):
    F = _oracle_forward(model, X)

    def L(w):
        out = F(w)
        if loss == "mse":
            r = out - Y.reshape(out.shape[0], -1)
            return 0.5 * (r**2).sum() if reduction == "sum" else (r**2).mean()
        if loss == "bce":
            per = nn.BCEWithLogitsLoss(reduction="none")(out, Y.reshape(out.shape))
            return per.mean() if reduction == "mean" else per.mean(dim=1).sum()
        if loss == "nll":
            return nn.NLLLoss(reduction=reduction)(out, Y)
        raise AssertionError(loss)

    return L


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in model.parameters()])


CASES = {
    "dict-mse": lambda: (_model(), *_data(), "mse", "sum"),
    "dict-mse-mean": lambda: (_model(), *_data(), "mse", "mean"),
    "bce": lambda: (
        _model(),
        _data()[0],
        (
            torch.rand(N, K, generator=torch.Generator().manual_seed(1), dtype=torch.float64) > 0.5
        ).double(),
        "bce",
        "mean",
    ),
    "bce-soft-sum": lambda: (
        _model(),
        _data()[0],
        torch.rand(N, K, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
        "bce",
        "sum",
    ),
}


@pytest.fixture(params=list(CASES))
def case(request):
    model, X, Y, loss, reduction = CASES[request.param]()
    problem = lg.Problem(model, X, Y, loss=loss, reduction=reduction)
    w = _flat(model) + 0.1 * torch.randn(
        problem.p, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    return problem, w, _oracle_forward(model, X), _oracle_loss(model, X, Y, loss, reduction)


def test_loss_grad_hvp(case) -> None:
    problem, w, _, L = case
    torch.testing.assert_close(problem.loss(w), L(w), **TOL)
    g = torch.func.grad(L)(w)
    torch.testing.assert_close(problem.grad(w), g, **TOL)
    H = hessian(L, w)
    v = torch.randn(problem.p, 3, generator=torch.Generator().manual_seed(3), dtype=w.dtype)
    torch.testing.assert_close(problem.hvp(w, v[:, 0]), H @ v[:, 0], **TOL)
    torch.testing.assert_close(problem.hvp(w, v), H @ v, **TOL)
    # the unbiased mini-batch estimate on a subset
    idx = [0, 3, 5]
    per = torch.stack([_single_loss(problem, w, i) for i in range(N)])
    scale = 1 / len(idx) if problem.reduction == "mean" else N / len(idx)
    sub = per[idx].sum() * scale
    torch.testing.assert_close(problem.loss(w, idx), sub, **TOL)
    torch.testing.assert_close(problem.per_sample_losses(w), per, **TOL)


def _single_loss(problem, w, i):
    """ℓ_i from the oracle: its loss on the one sample ``i`` ("mean" over one sample is ℓ_i)."""
    X, Y = problem.batch([i])
    return _oracle_loss(problem.model, X, Y, problem.loss_name, "mean")(w) * (
        0.5 * problem.k if problem.loss_name == "mse" and problem.reduction == "sum" else 1.0
    )


def test_jvp_vjp_and_outputs(case) -> None:
    problem, w, F, _ = case
    J = jacobian(lambda w_: F(w_).reshape(-1), w)
    torch.testing.assert_close(problem.F(w), F(w), **TOL)
    v = torch.randn(problem.p, generator=torch.Generator().manual_seed(4), dtype=w.dtype)
    torch.testing.assert_close(problem.jvp(w, v).reshape(-1), J @ v, **TOL)
    u = torch.randn(N, problem.k, generator=torch.Generator().manual_seed(5), dtype=w.dtype)
    torch.testing.assert_close(problem.vjp(w, u), J.T @ u.reshape(-1), **TOL)


@pytest.mark.parametrize("method", ["structured", "jacobian", "ntvp"])
def test_tangent_kernel(case, method: str) -> None:
    problem, w, F, _ = case
    J = jacobian(lambda w_: F(w_).reshape(-1), w)
    K_ = lg.tangent_kernel(problem, w, method=method, chunk_size=3)
    torch.testing.assert_close(K_, J @ J.T, **TOL)


def test_hessian_spectrum_and_trace(case) -> None:
    problem, w, _, L = case
    H = hessian(L, w)
    ev = torch.linalg.eigvalsh(H)
    spec = lg.hessian_spectrum(problem, w, top=2, bottom=1, solver="dense")
    torch.testing.assert_close(torch.as_tensor(spec.top), ev.flip(0)[:2], **TOL)
    torch.testing.assert_close(torch.as_tensor(spec.bottom), ev[:1], **TOL)
    lanczos = lg.hessian_spectrum(problem, w, top=1, bottom=0, solver="lanczos", tol=1e-10)
    assert abs(lanczos.top[0] - float(ev[-1])) <= 1e-7 * abs(float(ev[-1]))
    tr = lg.hessian_trace(problem, w, estimator="exact")
    assert abs(tr.estimate - float(H.trace())) <= 1e-9 * max(1.0, abs(float(H.trace())))


# ---------------------------------------------------------------- other input shapes
def test_tuple_inputs_and_one_dict_argument_give_the_same_numbers() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(N, D, generator=g, dtype=torch.float64)
    b = torch.randn(N, 2, generator=g, dtype=torch.float64)
    Y = torch.randn(N, K, generator=g, dtype=torch.float64)
    pair = lg.Problem(_model(PairModel), (a, b), Y)  # model(a, b)
    single = lg.Problem(_model(DictArgModel), ({"a": a, "b": b},), Y)  # model({"a":…, "b":…})
    w = pair.params()
    L = _oracle_loss(pair.model, (a, b), Y, "mse", "sum")
    torch.testing.assert_close(pair.loss(w), L(w), **TOL)
    torch.testing.assert_close(single.grad(w), torch.func.grad(L)(w), **TOL)
    torch.testing.assert_close(
        lg.tangent_kernel(single, w, method="structured"),
        lg.tangent_kernel(pair, w, method="jacobian"),
        **TOL,
    )
    x, _ = pair.batch([4, 1])
    assert isinstance(x, tuple) and torch.equal(x[1], b[[4, 1]])


class _DictSamples(Dataset):
    """HuggingFace-datasets style: every sample is one flat dict, targets under "labels"."""

    def __init__(self, X: dict[str, torch.Tensor], Y: torch.Tensor) -> None:
        self.X, self.Y = X, Y

    def __len__(self) -> int:
        return len(self.Y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**{k: v[i] for k, v in self.X.items()}, "labels": self.Y[i]}


def test_loader_with_dict_batches_matches_tensors() -> None:
    X, Y = _data()
    model = _model()
    tensors = lg.Problem(model, X, Y, chunk_size=3)
    loader = DataLoader(_DictSamples(X, Y), batch_size=4)
    keys = (("input_ids", "features"), "labels")
    loaded = lg.Problem.from_loader(model, loader, batch_keys=keys, chunk_size=3)
    w = tensors.params()
    v = torch.randn(tensors.p, generator=torch.Generator().manual_seed(6), dtype=w.dtype)
    torch.testing.assert_close(loaded.loss(w), tensors.loss(w), **TOL)
    torch.testing.assert_close(loaded.grad(w), tensors.grad(w), **TOL)
    torch.testing.assert_close(loaded.hvp(w, v), tensors.hvp(w, v), **TOL)
    torch.testing.assert_close(loaded.loss(w, [1, 6]), tensors.loss(w, [1, 6]), **TOL)
    torch.testing.assert_close(
        lg.tangent_kernel(loaded, w, method="ntvp"), lg.tangent_kernel(tensors, w), **TOL
    )
    xb, _ = loaded.batch()
    assert set(xb) == {"input_ids", "features"} and xb["input_ids"].dtype == torch.int64


def test_integer_leaves_keep_their_dtype_float_leaves_follow_the_model() -> None:
    X, Y = _data()
    X32 = {"input_ids": X["input_ids"], "features": X["features"].float()}
    problem = lg.Problem(_model(), X32, Y)
    x, _ = problem.batch()
    assert x["input_ids"].dtype == torch.int64 and x["features"].dtype == torch.float64


# ---------------------------------------------------------------- named losses
def test_bce_mean_is_torch_bce_with_logits() -> None:
    X, _ = _data()
    Y = torch.rand(N, K, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    model = _model()
    problem = lg.Problem(model, X, Y, loss="bce")
    assert problem.reduction == lg.problem.DEFAULT_REDUCTION["bce"] == "mean"
    torch.testing.assert_close(problem.loss(), nn.BCEWithLogitsLoss()(model(**X), Y), **TOL)
    per = problem.per_sample_losses()
    torch.testing.assert_close(per, nn.BCEWithLogitsLoss(reduction="none")(model(**X), Y).mean(1))
    summed = lg.Problem(model, X, Y, loss="bce", reduction="sum")
    torch.testing.assert_close(summed.loss(), per.sum(), **TOL)


def test_nll_matches_torch_and_cross_entropy_on_logits() -> None:
    X, _ = _data()
    y = torch.randint(0, 3, (N,), generator=torch.Generator().manual_seed(8))
    logits_model = _model(k=3)

    class Kw(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = logits_model

        def forward(self, **x: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(self.inner(**x), dim=-1)

    nll = lg.Problem(Kw(), X, y, loss="nll")
    ce = lg.Problem(logits_model, X, y, loss="cross_entropy")
    assert nll.reduction == "mean"
    w = ce.params()
    torch.testing.assert_close(nll.loss(w), nn.NLLLoss()(Kw()(**X), y), **TOL)
    torch.testing.assert_close(nll.loss(w), ce.loss(w), **TOL)
    torch.testing.assert_close(nll.grad(w), ce.grad(w), **TOL)
    L = _oracle_loss(nll.model, X, y, "nll", "mean")
    torch.testing.assert_close(nll.grad(w), torch.func.grad(L)(w), **TOL)


@pytest.mark.parametrize(
    ("loss", "Y", "match"),
    [
        ("bce", torch.zeros(N, K, dtype=torch.long), "needs float targets"),
        ("bce", torch.zeros(N, K + 1, dtype=torch.float64), "logits per sample"),
        ("nll", torch.zeros(N, dtype=torch.float64), "needs integer class indices"),
        ("nll", torch.full((N,), K, dtype=torch.long), "class"),
    ],
)
def test_new_losses_check_their_targets(loss: str, Y: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lg.Problem(_model(), _data()[0], Y, loss=loss)


def test_dense_jacobian_and_interpolant_on_dict_inputs() -> None:
    """The dense Jacobian (vmap over samples of every leaf) and the Gauss-Newton solver."""
    from lossgeometry.operators.jacobian import dense_jacobian

    X, Y = _data()
    model = _model()
    problem = lg.Problem(model, X, Y)
    F = _oracle_forward(model, X)
    w = problem.params()
    J = jacobian(lambda w_: F(w_).reshape(-1), w)
    torch.testing.assert_close(dense_jacobian(problem, w), J, **TOL)
    sol = lg.find_interpolant(problem, w)
    assert sol.success
    assert float((F(sol.w) - Y).norm()) < 1e-8  # the oracle's forward agrees: F(w*) = Y


def test_monitor_on_a_probe_of_dict_inputs() -> None:
    """The Monitor's probe subset indexes every leaf; records match the oracle on the subset."""
    X, Y = _data()
    model = _model()
    mon = lg.Monitor(lg.Problem(model, X, Y), probe=[1, 2, 6], measure=("kernel_min",))
    rec = mon.step(0)
    sub_x = {k: v[[1, 2, 6]] for k, v in X.items()}
    w = _flat(model)
    L = _oracle_loss(model, sub_x, Y[[1, 2, 6]], "mse", "sum")
    assert rec["loss"] == pytest.approx(float(L(w)), rel=1e-12)
    J = jacobian(lambda w_: _oracle_forward(model, sub_x)(w_).reshape(-1), w)
    assert rec["kernel_min"] == pytest.approx(float(torch.linalg.eigvalsh(J @ J.T)[0]), rel=1e-6)
