"""Train-mode layers, random models and dict loaders: the Problem measures without changing
the user's model (BatchNorm statistics, random streams) and reads dict batches by key."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, Dataset

import lossgeometry as lg
from lossgeometry._checks import preserved_rng


def _norm_model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "bn1d":
        m = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2))
    elif kind == "bn2d":
        m = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1),
            nn.BatchNorm2d(3),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(3 * 4 * 4, 2),
        )
    else:  # instance norm that tracks running statistics
        m = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1),
            nn.InstanceNorm2d(3, track_running_stats=True),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(3 * 4 * 4, 2),
        )
    return m.double().train()


def _inputs(kind: str, n: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    shape = (n, 3) if kind == "bn1d" else (n, 1, 4, 4)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["bn1d", "bn2d", "instancenorm"])
def test_allow_batchnorm_leaves_running_statistics_untouched(kind):
    model = _norm_model(kind)
    X = _inputs(kind)
    Y = torch.randn(X.shape[0], 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    before = {k: v.clone() for k, v in model.named_buffers()}
    assert before  # the norm layer tracks statistics
    pb = lg.Problem(model, X, Y, allow_batchnorm=True)  # one chunk: batch statistics of all
    w = pb.params() + 0.05
    v = torch.randn(pb.p, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    L, g = pb.loss_and_grad(w)
    hv = pb.hvp(w, v)
    pb.F(w), pb.jvp(w, v), pb.vjp(w, torch.ones(pb.n, pb.k, dtype=torch.float64))
    pb.per_sample_losses(w), lg.train(pb, "gd", steps=2, lr=0.01)
    for name, t in model.named_buffers():
        assert torch.equal(t, before[name]), name  # bit-identical, num_batches_tracked too
    assert all(m.training for m in model.modules())
    # the numbers are the train-mode model's (batch statistics), checked on a dense oracle
    ref = copy.deepcopy(model)

    def L_dense(wv):
        pd = pb.param_dict(wv)
        out = functional_call(ref, ({**pd}, {k: b.clone() for k, b in ref.named_buffers()}), (X,))
        return 0.5 * ((out - Y) ** 2).sum()

    torch.testing.assert_close(L, L_dense(w), rtol=1e-12, atol=1e-12)
    g_ref = torch.autograd.functional.jacobian(L_dense, w)
    H = torch.autograd.functional.hessian(L_dense, w)
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(hv, H @ v, rtol=1e-9, atol=1e-11)


def test_construction_leaves_random_streams_untouched():
    """Building a Problem of a random model (allowed) draws nothing from the user's stream."""

    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return F.dropout(self.lin(x), 0.5, self.training)

    torch.manual_seed(5)
    X, Y = torch.randn(4, 3), torch.randn(4, 2)
    m = Noisy()
    state = torch.get_rng_state()
    lg.Problem(m, X, Y, allow_dropout=True)
    assert torch.equal(torch.get_rng_state(), state)
    m.eval()  # functional dropout off in eval mode: deterministic, accepted
    pb = lg.Problem(m, X, Y)
    assert torch.equal(torch.get_rng_state(), state)
    assert pb.loss() == pb.loss()


def test_preserved_rng_restores_every_generator():
    import random

    import numpy as np

    def draw(k):
        return torch.rand(k), np.random.rand(k), random.random()  # noqa: NPY002

    def seed():
        torch.manual_seed(0)
        np.random.seed(0)  # noqa: NPY002
        random.seed(0)

    seed()
    expected = draw(2)
    seed()
    with preserved_rng():
        draw(5)
    got = draw(2)
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


class _DictSamples(Dataset):
    def __init__(self, X, Y):
        self.X, self.Y = X, Y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return {"image": self.X[i], "label": self.Y[i], "id": i}


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_dict_batches_read_by_key(loss):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 3, generator=g, dtype=torch.float64)
    Y = (
        torch.randn(10, 2, generator=g, dtype=torch.float64)
        if loss == "mse"
        else torch.randint(0, 2, (10,), generator=g)
    )
    dense = lg.Problem(model, X, Y, loss=loss)
    loader = DataLoader(_DictSamples(X, Y), batch_size=4)
    pb = lg.Problem.from_loader(model, loader, loss=loss, batch_keys=("image", "label"))
    w = dense.params()
    v = torch.randn(dense.p, generator=g, dtype=torch.float64)
    torch.testing.assert_close(pb.loss(w), dense.loss(w))
    torch.testing.assert_close(pb.grad(w), dense.grad(w))
    torch.testing.assert_close(pb.hvp(w, v), dense.hvp(w, v))
    torch.testing.assert_close(pb.loss(w, [1, 7]), dense.loss(w, [1, 7]))
    x, _ = pb.batch()
    torch.testing.assert_close(x, X)
    assert pb.to(dtype=torch.float32).loss(w.float()).dtype == torch.float32


def test_non_finite_outputs_are_not_called_random():
    """The determinism probe compares NaN with NaN and inf with inf as equal."""
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
        model.bias[1] = float("inf")
    lg.Problem(model, torch.randn(4, 3), torch.randn(4, 2))
