"""SweepResult and SweepRun: JSON round trip, table, summaries, plots (no runs needed)."""

from __future__ import annotations

import json
import math

import matplotlib
import pytest

import lossgeometry as lg
from lossgeometry.app.sweep import SweepResult, SweepRun

matplotlib.use("Agg")


def _fake_result() -> SweepResult:
    runs = []
    for w in (8, 16, 32):
        for s in (0, 1):
            failed = w == 32 and s == 1
            runs.append(
                SweepRun(
                    f"width={w},seed={s}",
                    {"model.width": w, "seed": s},
                    "failed" if failed else "done",
                    1.5,
                    f"out/width={w},seed={s}",
                    metrics={}
                    if failed
                    else {"training.loss_final": w + 0.1 * s, "x.inf": math.inf},
                    error="ValueError: boom" if failed else None,
                )
            )
    return SweepResult(
        out="out",
        job="analyze",
        grid={"model.width": [8, 16, 32], "seed": [0, 1]},
        runs=runs,
        config={"seed": 0, "train": {"lr": 0.5}},
        seconds=9.0,
    )


def test_sweep_result_round_trip_table_and_plot(tmp_path):
    res = _fake_result()
    d = json.loads(json.dumps(res.to_dict()))  # strict JSON
    back = SweepResult.from_dict(d)
    assert back == res and isinstance(back.runs[0], SweepRun)
    assert back.runs[0].metrics["x.inf"] == math.inf  # strict JSON "inf" comes back a float
    res.save(tmp_path / "s.json")
    assert lg.load_result(tmp_path / "s.json") == res
    assert res.counts()["failed"] == 1 and res.failed[0].error == "ValueError: boom"

    rows = res.table(["training.loss_final"])
    assert rows[1] == {
        "name": "width=8,seed=1",
        "width": 8,
        "seed": 1,
        "status": "done",
        "seconds": 1.5,
        "training.loss_final": 8.1,
    }
    assert rows[-1]["error"] == "ValueError: boom" and rows[-1]["training.loss_final"] is None
    assert res.headline() == ["training.loss_final"]  # the report's number comes first

    ax = res.plot(x="width", y="training.loss_final", logx=True)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert sorted(lines) == ["seed=0", "seed=1"]  # one line per value of the other parameter
    assert list(lines["seed=0"].get_xdata()) == [8, 16, 32]
    assert list(lines["seed=0"].get_ydata()) == [8.0, 16.0, 32.0]
    assert list(lines["seed=1"].get_xdata()) == [8, 16]  # the failed run is left out
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "model.width"
    # by seed, grouped by width; the full dotted key works too
    ax = res.plot(x="seed", y="training.loss_final")
    assert len(ax.get_lines()) == 3
    with pytest.raises(ValueError, match="not a swept parameter"):
        res.plot(x="depth", y="training.loss_final")
    with pytest.raises(ValueError, match="no run has a metric"):
        res.plot(x="model.width", y="training.loss")


def test_sweep_summaries_are_flat_and_plots_take_ax_first():
    import matplotlib.pyplot as plt

    res = _fake_result()
    s = res.summary()
    assert s == {
        "job": "analyze",
        "runs": len(res.runs),
        **res.counts(),
        "ok": False,
        "seconds": 9.0,
        "swept": "model.width, seed",
        "metrics": len(res.metric_names()),
    }
    run = res.runs[1]
    rs = run.summary()
    assert rs["name"] == run.name and rs["status"] == "done" and rs["ok"] is True
    assert rs["params.model.width"] == 8 and rs["params.seed"] == 1
    assert {k: rs[k] for k in run.metrics} == run.metrics
    for v in (*s.values(), *rs.values()):
        assert v is None or isinstance(v, (bool, int, float, str))
    # a run's plot: one bar per numeric metric, its length the metric's value
    fig, ax = plt.subplots()
    assert run.plot(ax) is ax
    numeric = {k: v for k, v in run.metrics.items() if math.isfinite(v)}  # no bar for inf
    assert numeric == {"training.loss_final": 8.1}
    assert [p.get_width() for p in ax.patches] == list(numeric.values())
    assert [t.get_text() for t in ax.get_yticklabels()] == list(numeric)
    with pytest.raises(ValueError, match="no metric"):
        run.plot(metrics=["nope"])
    # the sweep's plot takes ax first, x and y by keyword
    fig2, ax2 = plt.subplots()
    assert res.plot(ax2, x="width", y="training.loss_final") is ax2
    ys = sorted(tuple(ln.get_ydata()) for ln in ax2.get_lines())
    assert ys == [(8.0, 16.0, 32.0), (8.1, 16.1)]
    with pytest.raises(TypeError):
        res.plot("width", "training.loss_final")  # the old positional x, y
    plt.close(fig)
    plt.close(fig2)


def test_sweep_plots_keep_their_labels_inside_the_figure():
    """The x label of the sweep plot was cut off at the bottom of its own figure."""
    import matplotlib.pyplot as plt

    res = _fake_result()
    for ax, names in (
        (res.plot(x="width", y="training.loss_final", logx=True), False),
        (res.runs[0].plot(), True),  # the metric names on the y axis
    ):
        fig = ax.figure
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        ticks = list(ax.get_yticklabels()) if names else []
        for label in (ax.xaxis.label, ax.yaxis.label, ax.title, *ticks):
            if not label.get_text():
                continue
            ext = label.get_window_extent(renderer)
            assert ext.x0 >= box.x0 - 0.5 and ext.y0 >= box.y0 - 0.5, label.get_text()
            assert ext.x1 <= box.x1 + 0.5 and ext.y1 <= box.y1 + 0.5, label.get_text()
        plt.close(fig)
