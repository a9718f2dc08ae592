"""CertifiedGD and the certified mini-batch SGD step, on closed-form linear models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.conditions import (
    CertifiedGD,
    certified_sgd,
    certify_plstar,
    compare_with_certificate,
    per_sample_kernel_max,
    run_certified_gd,
    sgd_step_size,
)


def _linear(n=8, d=14, k=2, reduction="sum", seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    return lg.Problem(nn.Linear(d, k, bias=False).double(), X, Y, reduction=reduction), X


def test_certified_gd_takes_the_certificate_step():
    problem, _ = _linear()
    cert = certify_plstar(problem, samples=2)
    w = torch.zeros(3, requires_grad=True)
    assert CertifiedGD([w], cert).lr == cert.step_size
    assert CertifiedGD([w], cert, strict=True).lr == cert.step_size_strict
    assert CertifiedGD([w], cert, scale=0.5).lr == pytest.approx(0.5 * cert.step_size)
    run = run_certified_gd(problem, cert, steps=60, record_every=3)
    ref = lg.train(problem, "gd", steps=60, lr=cert.step_size, record_every=3)
    assert np.allclose(run.loss, ref.loss, rtol=1e-12)
    check = compare_with_certificate(run, cert)
    assert check.loss_holds and check.distance_holds and check.covered
    assert check.max_excess <= 1.0


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sgd_step_matches_closed_form(reduction):
    problem, X = _linear(reduction=reduction)
    n = problem.n
    cert = certify_plstar(problem, samples=2)
    c = problem.loss_scale
    ev = torch.linalg.eigvalsh(X @ X.T)
    mu, lmax = float(ev[0]), float(ev[-1])
    kd = float((X**2).sum(1).max())  # K_ii = ‖x_i‖² I_k for a linear layer
    assert per_sample_kernel_max(problem) == pytest.approx(kd, rel=1e-10)
    etas = []
    for b in (1, 2, 4, 8):
        s = sgd_step_size(problem, cert, b)
        mu_c, beta, lam_g = c * mu, c * lmax, c * n * kd
        eta = b * mu_c / (beta * (lam_g + mu_c * (b - 1)))
        assert s.step_size == pytest.approx(eta, rel=1e-8)
        assert s.rate == pytest.approx(1 - mu_c * eta, rel=1e-10)
        assert s.critical_batch_size == pytest.approx(1 + lam_g / mu_c, rel=1e-8)
        G = math.sqrt(2 * c * ((1 - 1 / b) * lmax + n * kd / b))
        assert s.radius_delta == pytest.approx(
            2 * G * math.sqrt(cert.loss0) / (mu_c * 0.1), rel=1e-8
        )
        assert s.step_size <= 1 / s.beta
        etas.append(s.step_size * c)
    assert np.all(np.diff(etas) > 0)  # larger batches, larger steps


def test_sgd_mean_loss_below_bound():
    problem, _ = _linear()
    cert = certify_plstar(problem, samples=2)
    step = sgd_step_size(problem, cert, batch_size=2)
    runs = [certified_sgd(problem, step, 100, seed=s, record_every=10) for s in range(16)]
    mean = np.mean([r.loss for r in runs], axis=0)
    pred = step.predicted(runs[0].steps)
    assert np.all(mean <= pred * (1 + 1e-9))
    assert mean[-1] < 0.5 * mean[0]
    for r in runs:
        check = compare_with_certificate(r, cert, sgd_step=step)
        assert check.method == "sgd" and check.distance_holds  # R_δ is very generous here
    assert runs[0].optimizer == "certified-sgd" and runs[0].batch_size == 2


def test_sgd_with_a_much_larger_step_breaks_the_bound():
    """Outside the theorem's step (here 2.5/β with full batches) the loss grows."""
    problem, _ = _linear()
    cert = certify_plstar(problem, samples=2)
    step = sgd_step_size(problem, cert, batch_size=problem.n)
    import dataclasses

    big = dataclasses.replace(step, step_size=2.5 / step.beta)
    run = certified_sgd(problem, big, 20, seed=0)
    check = compare_with_certificate(run, cert, sgd_step=step)
    assert not check.loss_holds and run.loss[-1] > run.loss[0]


def test_sgd_step_errors():
    problem, _ = _linear()
    cert = certify_plstar(problem, samples=2)
    with pytest.raises(ValueError, match="batch_size"):
        sgd_step_size(problem, cert, 0)
    with pytest.raises(ValueError, match="delta"):
        sgd_step_size(problem, cert, 2, delta=1.5)
    import dataclasses

    with pytest.raises(ValueError, match="µ = 0"):
        sgd_step_size(problem, dataclasses.replace(cert, mu=0.0), 2)
    with pytest.raises(ValueError, match="points"):
        sgd_step_size(problem, dataclasses.replace(cert, points=None), 2)
