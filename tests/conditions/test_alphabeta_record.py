"""record_conditions against a brute-force recomputation from stored iterates."""

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.conditions import ReplayMismatchError, record_conditions
from lossgeometry.train import BatchSampler
from tests.conftest import tiny_mlp


def _problem(n=12, reduction=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return lg.Problem(tiny_mlp(), X, Y, reduction=reduction), X, Y


def _brute_force(model, X, Y, iterates, batches, wK, per_sample):
    """Per step: f_B(x_k), f_B(x^K), <grad f_B(x_k), x_k - x^K>, ||grad f_B|| by plain autograd."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def f_batch(w, idx):
        params, off = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(np.prod(s))
            params[n] = w[off : off + k].view(s)
            off += k
        out = torch.func.functional_call(model, params, (X[idx],))
        return per_sample(out, Y[idx]).mean()

    rows = []
    for w, idx in zip(iterates, batches, strict=True):
        w = w.clone().requires_grad_(True)
        L = f_batch(w, idx)
        (g,) = torch.autograd.grad(L, w)
        rows.append(
            (
                float(L.detach()),
                float(f_batch(wK, idx)),
                float(g @ (w.detach() - wK)),
                float(g.norm()),
            )
        )
    return np.array(rows)


@pytest.mark.parametrize(
    ("optimizer", "kwargs", "reduction"),
    [("sgd", {"lr": 0.01}, None), ("momentum", {"lr": 0.01}, None), ("adam", {"lr": 0.01}, "mean")],
)
def test_recorded_T_equals_brute_force(optimizer, kwargs, reduction):
    pb, X, Y = _problem(reduction=reduction)
    steps, b = 15, 4
    trace = record_conditions(pb, optimizer, steps, b, seeds=(0, 3), full_loss_every=4, **kwargs)
    alphas, betas = np.linspace(0, 4, 9), np.linspace(0, 3, 7)
    Ts = []
    for j, seed in enumerate((0, 3)):
        traj = lg.train(
            pb, optimizer, steps, batch_size=b, seed=seed, record_iterates=True, **kwargs
        )
        sampler = BatchSampler(pb.n, b, seed)
        batches = [sampler.next() for _ in range(steps)]
        per_sample = (
            (lambda o, y: 0.5 * ((o - y) ** 2).sum(1))
            if pb.reduction == "sum"
            else (lambda o, y: ((o - y) ** 2).sum(1) / 2)
        )
        ref = _brute_force(pb.model, X, Y, traj.iterates[:steps], batches, traj.w_final, per_sample)
        m = trace.run == j
        np.testing.assert_allclose(trace.loss_batch[m], ref[:, 0], rtol=1e-12)
        np.testing.assert_allclose(trace.loss_batch_final[m], ref[:, 1], rtol=1e-12)
        np.testing.assert_allclose(trace.inner[m], ref[:, 2], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(trace.grad_norm[m], ref[:, 3], rtol=1e-12)
        np.testing.assert_array_equal(trace.batch_indices[m], torch.stack(batches).numpy())
        np.testing.assert_allclose(
            trace.distance[m],
            (traj.iterates[:steps] - traj.w_final).norm(dim=1).numpy(),
            rtol=1e-12,
        )
        # T(x_k) = c − α a + β b with f* = 0 (Definition 1's sign of the β term)
        c, a, bb = ref[:, 2], ref[:, 0] - ref[:, 1], ref[:, 0]
        Ts.append(c[None, None] - alphas[:, None, None] * a + betas[None, :, None] * bb)
        # full records: f(x_k) = mean loss over all samples, every 4 steps and the last step
        fm = trace.full_run == j
        assert list(trace.full_step[fm]) == [0, 4, 8, 12, 14]
        for t, fl in zip(trace.full_step[fm], trace.full_loss[fm], strict=True):
            expect = float(pb.loss(traj.iterates[t])) / (pb.n if pb.reduction == "sum" else 1)
            assert fl == pytest.approx(expect, rel=1e-12)
        assert trace.final_loss[j] == pytest.approx(
            traj.loss[-1] / (pb.n if pb.reduction == "sum" else 1)
        )
    brute = np.concatenate(Ts, axis=2).min(axis=2)
    np.testing.assert_allclose(trace.min_T(alphas, betas), brute, rtol=1e-10, atol=1e-14)
    assert trace.replay_error.tolist() == [0.0, 0.0]  # bit-exact replay on CPU


def test_full_batch_uses_full_quantities_and_mean_normalization():
    pb, _X, _Y = _problem()
    trace = record_conditions(pb, "gd", 10, None, lr=0.01)
    assert trace.batch_size is None and trace.batch_indices is None
    # every step is a full record, with the same numbers as the per-step ones
    np.testing.assert_array_equal(trace.full_step, np.arange(10))
    np.testing.assert_allclose(trace.full_loss, trace.loss_batch)
    np.testing.assert_allclose(trace.full_inner, trace.inner)
    np.testing.assert_allclose(trace.loss_batch_final, trace.final_loss[0])
    # mean normalization: the sum-reduced loss divided by n
    traj = lg.train(pb, "gd", 10, lr=0.01)
    assert trace.loss_batch[0] == pytest.approx(traj.loss[0] / pb.n, rel=1e-12)


def test_feasibility_does_not_depend_on_the_reduction():
    """Same run under reduction sum (lr/n) and mean (lr): T differs by a constant factor."""
    pb_sum, X, Y = _problem()
    pb_mean = lg.Problem(tiny_mlp(), X, Y, reduction="mean")
    k = 2  # outputs: ℓ_sum = ½‖r‖², ℓ_mean = ‖r‖²/k → ℓ_mean = (2/k) ℓ_sum
    t1 = record_conditions(pb_sum, "sgd", 12, 4, lr=0.01 / 2)  # (n/b)Σℓ_sum vs (1/b)Σℓ_mean
    t2 = record_conditions(pb_mean, "sgd", 12, 4, lr=0.01 / 2 * pb_sum.n * k / 2)
    np.testing.assert_allclose(t2.inner, t1.inner * 2 / k, rtol=1e-8)
    al = np.linspace(0, 3, 7)
    np.testing.assert_array_equal(t1.feasible_region(al, al), t2.feasible_region(al, al))


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2).double()

    def forward(self, x):
        return self.lin(x) + 1e-3 * torch.randn(x.shape[0], 2, dtype=x.dtype)


def test_replay_mismatch_raises_clear_error():
    torch.manual_seed(0)
    X, Y = torch.randn(8, 3).double(), torch.randn(8, 2).double()
    pb = lg.Problem(Noisy(), X, Y, allow_dropout=True)  # random on purpose
    with pytest.raises(ReplayMismatchError, match="did not reproduce"):
        record_conditions(pb, "sgd", 5, 4, lr=0.05)
    # a loose tolerance accepts it and reports the error
    tr = record_conditions(pb, "sgd", 5, 4, lr=0.05, replay_rtol=1.0)
    assert 0 < tr.replay_error[0] < 1.0


def test_x_final_skips_first_pass_and_is_checked():
    pb, _, _ = _problem()
    traj = lg.train(pb, "sgd", 8, lr=0.01, batch_size=4, seed=2)
    tr = record_conditions(pb, "sgd", 8, 4, seeds=(2,), lr=0.01, x_final=traj.w_final)
    ref = record_conditions(pb, "sgd", 8, 4, seeds=(2,), lr=0.01)
    np.testing.assert_array_equal(tr.inner, ref.inner)
    with pytest.raises(ReplayMismatchError, match="x_final must come from the same run"):
        record_conditions(pb, "sgd", 8, 4, seeds=(1,), lr=0.01, x_final=traj.w_final)
    with pytest.raises(ValueError, match="single seed"):
        record_conditions(pb, "sgd", 8, 4, seeds=(1, 2), lr=0.01, x_final=traj.w_final)


def test_dropout_switched_off_and_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 2)).double()
    X, Y = torch.randn(10, 3).double(), torch.randn(10, 2).double()
    pb = lg.Problem(model, X, Y, allow_dropout=True)
    tr = record_conditions(pb, "sgd", 6, 5, lr=0.01)
    assert tr.dropout_disabled == ["2"]
    assert model[2].training  # restored
    assert tr.replay_error[0] == 0.0
    # the recorded losses are those of the network without dropout
    model.eval()
    pb_eval = lg.Problem(model, X, Y)
    ref = record_conditions(pb_eval, "sgd", 6, 5, lr=0.01)
    np.testing.assert_array_equal(tr.loss_batch, ref.loss_batch)
    model.train()


def test_per_sample_f_star_and_scheduler_and_our_optimizers():
    pb, _, _ = _problem()
    fstar = np.linspace(0.0, 0.01, pb.n)
    tr = record_conditions(
        pb,
        "sgd",
        6,
        4,
        lr=0.01,
        f_star=fstar,
        lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5),
    )
    idx = tr.batch_indices
    np.testing.assert_allclose(tr.f_star_batch, fstar[idx].mean(axis=1))
    assert tr.f_star is None
    for opt in (
        lambda ps: lg.optim.SPSMax(ps, lr=0.5),
        lambda ps: lg.optim.NGN(ps, lr=0.01),
        lambda ps: lg.optim.DecSPS(ps, lr=0.5),
        lambda ps: lg.optim.AdaGradNormMax(ps, lr=0.05),
    ):
        t = record_conditions(pb, opt, 6, 4)
        assert t.replay_error[0] == 0.0
    with pytest.raises(ValueError, match="one value per sample"):
        record_conditions(pb, "sgd", 3, 4, lr=0.01, f_star=[0.0, 1.0])


def test_argument_errors():
    pb, _, _ = _problem()
    with pytest.raises(ValueError, match="steps"):
        record_conditions(pb, "sgd", 0, 4, lr=0.1)
    with pytest.raises(ValueError, match="seeds"):
        record_conditions(pb, "sgd", 3, 4, lr=0.1, seeds=())
    with pytest.raises(TypeError, match="Problem"):
        record_conditions("x", "sgd", 3, 4, lr=0.1)


def test_train_callback_sees_every_step_before_it_is_taken():
    pb, _, _ = _problem()
    seen = []
    traj = lg.train(
        pb,
        "sgd",
        5,
        lr=0.01,
        batch_size=4,
        record_iterates=True,
        callback=lambda t, w, idx, L, g: seen.append(
            (t, w.clone(), idx.clone(), float(L), g.clone())
        ),
    )
    assert [s[0] for s in seen] == list(range(5))
    sampler = BatchSampler(pb.n, 4, 0)
    for t, w, idx, L, g in seen:
        torch.testing.assert_close(w, traj.iterates[t], rtol=0, atol=0)
        torch.testing.assert_close(idx, sampler.next())
        L2, g2 = pb.loss_and_grad(traj.iterates[t], idx)
        assert L == pytest.approx(float(L2), rel=1e-14)
        torch.testing.assert_close(g, g2)
