"""Figures that said the wrong thing: the plotted data and texts, not the pictures.

A PL* bound that is flat on its scale says why; the α-β colour bar's ticks read the values at
their positions (never "0.14, 0, 0"); the relaxed-PL panel shows every finite record and the
headline minimum.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from lossgeometry.conditions._alphabeta_grid import (
    draw_heatmap,
    signed_log,
    signed_log_ticks,
    tick_label,
)
from lossgeometry.conditions.aiming import relaxed_pl
from lossgeometry.conditions.plstar_check import CertificateCheck

matplotlib.use("Agg")


def _check(rate: float, steps: int = 400) -> CertificateCheck:
    t = np.arange(0, steps + 1, 20)
    loss0 = 880.0
    return CertificateCheck(
        steps=t,
        observed=loss0 / (1 + t),
        predicted=loss0 * rate**t,
        distance=np.sqrt(t),
        distance_bound=2 * np.sqrt(t) + 1,
        radius=2.35e5,
        lr=0.00373,
        rate=rate,
        method="gd",
        covered=True,
        loss_holds=True,
        distance_holds=True,
        max_excess=1.0,
        loss_floor=0.0,
        note="",
    )


def test_a_flat_pl_bound_says_its_per_step_decrease() -> None:
    flat = _check(1 - 1.6e-5)
    assert flat.contraction == pytest.approx(1.6e-5)
    assert "η c µ = 1.6e-05" in flat.bound_remark and "flat line at L(w0)" in flat.bound_remark
    fig = flat.plot()
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["bound flat on this scale: η c µ = 1.6e-05 per step"]
    pred = ax.get_lines()[1].get_ydata()
    assert np.allclose(pred, flat.predicted)  # the bound itself is drawn, at its values
    steep = _check(0.99)
    assert steep.bound_remark == "" and len(steep.plot().axes[0].texts) == 0


@pytest.mark.parametrize(
    "M",
    [
        np.array([[0.14, 0.0], [0.001, 0.0]]),  # the report's case: no negative value
        np.array([[0.14, -3e-5], [-2.0, 5e4]]),
        np.array([[-0.5, -1e-6], [-0.2, 0.0]]),
    ],
)
def test_colour_bar_ticks_read_the_values_at_their_positions(M) -> None:
    ticks, labels = signed_log_ticks(M)
    assert len(set(labels)) == len(labels)  # never "0.14, 0, 0"
    assert labels.count("0") == 1 and ticks[labels.index("0")] == 0
    for t, lab in zip(ticks, labels, strict=True):
        if t == 0:
            continue
        assert lab.startswith("−") == (t < 0)
        v = _parse(lab)
        # the labelled value maps (up to the label's 2 digits) to the tick's position
        s = 1e-3 * np.abs(M).max()
        side = np.abs(M[np.sign(M) == np.sign(t)]).max()
        pos = np.sign(v) * np.log1p(abs(v) / s) / np.log1p(side / s)
        assert pos == pytest.approx(t, abs=0.02), lab
    assert (min(ticks) < 0) == bool((M < 0).any()) and (max(ticks) > 0) == bool((M > 0).any())


def test_heatmap_colour_bar_uses_those_ticks() -> None:
    import matplotlib.pyplot as plt

    M = np.array([[0.14, 0.02], [0.001, 0.0]])
    fig, ax = plt.subplots()
    draw_heatmap(ax, np.array([0.0, 1.0]), np.array([0.0, 1.0]), M, True, "min T")
    cbar_ax = fig.axes[1]
    labels = [t.get_text() for t in cbar_ax.get_yticklabels()]
    assert labels == signed_log_ticks(M)[1] == ["0", "0.0043", "0.14"]
    assert np.allclose(cbar_ax.get_yticks(), [0, 0.5, 1])
    assert np.allclose(signed_log(M).max(), 1.0)
    plt.close(fig)


def test_tick_labels() -> None:
    assert tick_label(0.0) == "0"
    assert tick_label(0.1449) == "0.14"
    assert tick_label(-0.0031) == "−0.0031"
    assert tick_label(2.5e-5) == "2.5×10⁻⁵"
    assert tick_label(1499.0) == "1500"
    assert tick_label(-1.2e4) == "−1.2×10⁴"


def _parse(label: str) -> float:
    text = label.replace("−", "-")
    if "×10" in text:
        mant, exp = text.split("×10")
        exp = exp.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
        return float(mant) * 10.0 ** int(exp)
    return float(text)


def test_relaxed_pl_panel_draws_isolated_records_and_the_headline_minimum() -> None:
    """Full-data records every few steps: finite values between +inf ones (no line segment)."""
    steps = np.arange(12)
    grad = np.full(12, 2.0)
    excess = np.where(steps % 4 == 0, 0.5, 0.0)  # only steps 0, 4, 8 constrain µ
    excess[8] = 0.0
    pl = relaxed_pl(np.zeros(12), steps, grad, excess, (1.0, 2.0))
    assert np.isfinite(pl.mu).all()
    ax = pl.plot()
    lines = ax.get_lines()
    data = [ln for ln in lines if ln.get_linestyle() == "-"]
    for j, ln in enumerate(data):
        y = np.asarray(ln.get_ydata(), dtype=float)
        finite = np.isfinite(y)
        assert finite.sum() == 2 and ln.get_marker() == "o"  # two isolated points, visible
        assert np.allclose(y[finite], pl.log_mu[j][np.isfinite(pl.log_mu[j])])
    mins = [ln for ln in lines if ln.get_linestyle() == ":"]
    assert [float(ln.get_ydata()[0]) for ln in mins] == pytest.approx(list(pl.log_mu_min))
    labels = ax.get_legend_handles_labels()[1]
    assert f"µ(δ=2) = {pl.mu[1]:.4g}" in labels
