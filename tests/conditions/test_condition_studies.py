"""The PL* and α-β studies: same numbers as the functions they wrap; options; Result I/O."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

import lossgeometry as lg
from lossgeometry.conditions.alphabeta_study import (
    AlphaBetaOptions,
    AlphaBetaStudy,
    alphabeta_study,
    analyze_trace,
    heatmap_axis,
)
from lossgeometry.conditions.plstar_study import PLStarOptions, PLStarStudy, plstar_study
from lossgeometry.options import OptionsError
from tests.conditions.plstar_fixtures import mlp_problem
from tests.conftest import tiny_mlp

matplotlib.use("Agg")


# --- PL* ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plstar_case():
    pb = mlp_problem(n=4, width=64)
    run = lg.train(pb, "gd", steps=10, lr=0.05)
    opts = PLStarOptions(samples=2, certified_gd_steps=8)
    return pb, run, opts, plstar_study(pb, pb.params(), trajectory=run, options=opts)


def test_plstar_study_is_certify_plstar_with_the_options(plstar_case):
    pb, run, opts, st = plstar_case
    cert = lg.certify_plstar(
        pb,
        pb.params(),
        samples=2,
        trajectory=run,
        max_rounds=1,
        trajectory_points=2,
        hessian_options={"restarts": 0},
    )
    assert st.certificate.to_dict() == cert.to_dict()
    check = lg.compare_with_certificate(run, cert)
    assert st.training_run is not None and st.training_run.to_dict() == check.to_dict()
    assert st.certificate.certified  # a wide NTK MLP near its targets
    gd = st.certified_gd
    assert gd is not None and gd.loss_holds and len(gd.steps) == 9  # steps 0..8
    # no CertifiedGD when asked for none, no training check without a run
    bare = plstar_study(pb, options=opts.replace(certified_gd_steps=0))
    assert bare.certified_gd is None and bare.training_run is None


def test_plstar_result_round_trip_summary_and_plot(plstar_case, tmp_path):
    *_, st = plstar_case
    back = lg.load_result(st.save(tmp_path / "pl.json"))
    assert isinstance(back, PLStarStudy) and isinstance(back.certificate, lg.PLStarCertificate)
    assert isinstance(back.certified_gd, lg.CertificateCheck)
    assert back.to_dict() == st.to_dict() and back.summary() == st.summary()
    s = st.summary()
    assert s["certified"] is True and s["mu"] == st.certificate.mu
    assert s["certified_gd_loss_holds"] is True
    ax = st.plot()
    assert ax.collections  # the sampled points
    ax.figure.clf()


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"sample": 3}, r"\[report.plstar\] sample: unknown option; did you mean 'samples'"),
        ({"max_rounds": 0}, "max_rounds = 0: must be at least 1"),
        ({"radius": -1.0}, "radius = -1.0: must be positive"),
        ({"certified_gd_steps": -5}, "must be non-negative"),
        ({"radii": 0.5}, "expected a list"),
    ],
)
def test_plstar_options_errors(data, msg):
    with pytest.raises(OptionsError, match=msg):
        PLStarOptions.from_mapping(data, where="report.plstar")


# --- α-β ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ab_case():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(12, 2, generator=g, dtype=torch.float64)
    pb = lg.Problem(tiny_mlp(), X, Y, reduction="mean")
    opts = AlphaBetaOptions(grid=9, full_loss_every=2, exclude_last=1)
    st = alphabeta_study(pb, "sgd", 12, 4, seeds=(0, 1), lr=0.05, options=opts)
    return pb, opts, st


def test_alphabeta_study_is_record_conditions_then_its_analysis(ab_case):
    pb, opts, st = ab_case
    trace = lg.record_conditions(
        pb, "sgd", 12, 4, seeds=(0, 1), lr=0.05, full_loss_every=2, store_indices=False
    )
    assert trace.to_dict() | {"wall_time": 0} == st.trace.to_dict() | {"wall_time": 0}
    pair = trace.smallest_pair(0.1, exclude_last=1)
    assert st.smallest_pair == (None if pair is None else [pair[0], pair[1]])
    g = heatmap_axis(opts, [None if pair is None else pair[0]])
    np.testing.assert_array_equal(st.alphas, g)
    np.testing.assert_array_equal(st.min_T, trace.min_T(g, g, exclude_last=1))
    np.testing.assert_array_equal(st.pl.mu, trace.pl_relaxed((1.0, 2.0)).mu)
    assert st.aiming.negative_fraction == trace.aiming("full").negative_fraction
    again = analyze_trace(st.trace, options=opts)
    np.testing.assert_array_equal(again.min_T, st.min_T)


def test_heatmap_axis_rule():
    o = AlphaBetaOptions(grid=5)
    np.testing.assert_array_equal(heatmap_axis(o, [None]), np.linspace(0, 10, 5))
    np.testing.assert_array_equal(heatmap_axis(o, [0.2]), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(heatmap_axis(o, [None, 2.1, 0.4]), np.linspace(0, 4, 5))
    np.testing.assert_array_equal(heatmap_axis(o.replace(alpha_max=3), [9.0]), np.linspace(0, 3, 5))


def test_alphabeta_result_round_trip_summary_and_plot(ab_case, tmp_path):
    _, _, st = ab_case
    back = lg.load_result(st.save(tmp_path / "ab.json"))
    assert isinstance(back, AlphaBetaStudy) and isinstance(back.trace, lg.ConditionTrace)
    assert isinstance(back.aiming, lg.AimingProfile) and isinstance(back.pl, lg.RelaxedPL)
    assert back.to_dict() == st.to_dict() and back.summary() == st.summary()
    s = st.summary()
    assert s["runs"] == 2 and s["steps"] == 12 and s["max_replay_error"] == 0.0
    assert s["pl_mu_delta2"] == pytest.approx(float(st.pl.mu[1]))
    top = float(st.trace.alpha_interval([0.0], exclude_last=1)[1][0])
    assert s["alpha_max_at_beta0"] == top and not math.isnan(top)
    ax = st.plot()
    assert ax.get_xlabel() == "α"
    ax.figure.clf()


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"margn": 0.2}, r"\[report.alphabeta\] margn: unknown option; did you mean 'margin'"),
        ({"grid": 1}, "grid = 1: must be at least 2"),
        ({"margin": -0.1}, "must be non-negative"),
        ({"alpha_max": 0}, "must be positive"),
        ({"exclude_last": 1.5}, "expected an integer"),
    ],
)
def test_alphabeta_options_errors(data, msg):
    with pytest.raises(OptionsError, match=msg):
        AlphaBetaOptions.from_mapping(data, where="report.alphabeta")
