"""The α-β experiments at a tiny size: files, JSON rows, the derived region, resume, configs."""

import json
import sys

import numpy as np
import pytest

from lossgeometry.app.experiments import available_experiments, bundled_configs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAMES = [
    "alphabeta_width",
    "alphabeta_cnn",
    "alphabeta_batch",
    "alphabeta_optimizers",
    "alphabeta_halfspace",
]

TINY = {
    "alphabeta_width": {
        "n": 48,
        "widths": [8, 16],
        "first_width": 16,
        "steps": 12,
        "batch_size": 16,
        "seeds": [0],
    },
    "alphabeta_cnn": {
        "n": 48,
        "channels": [2, 4],
        "first_channels": 2,
        "steps": 10,
        "batch_size": 16,
        "seeds": [0],
    },
    "alphabeta_batch": {"n": 48, "batch_sizes": [12, 24], "epochs": 2, "width": 16, "seeds": [0]},
    "alphabeta_optimizers": {
        "n": 48,
        "width": 16,
        "steps": 10,
        "batch_size": 16,
        "seeds": [0],
        "optimizers": {
            "sgd": {"optimizer": "sgd", "lr": 0.1},
            "sps": {"optimizer": "sps", "lr": 1.0, "kwargs": {"c": 0.5}},
        },
    },
    "alphabeta_halfspace": {
        "per_class": 5,
        "steps": 30,
        "seeds": [0],
        "inits": [[1.0, -1.0, -3.0], [0.0, 0.0, 0.0]],
    },
}


def _check_region(out, row):
    """The recorded region as derived: the smallest pair holds (min T = 0 on the linear
    program's boundary, up to rounding), and min T never decreases along the diagonal, since
    ``T(α + δ, β + δ) = T(α, β) + δ (f_B(x^K) − f*_B)`` with ``f_B(x^K) ≥ f*_B = 0``.
    Without a pair, no point of the line ``β = α − 0.1`` holds up to ``α = 100``."""
    from lossgeometry.conditions.alphabeta import ConditionTrace

    trace = ConditionTrace.load(out / "points" / f"{row['setting']}.trace.json")
    c, a, b = trace.coefficients()
    scale = float(np.abs(c).max() + np.abs(a).max() + np.abs(b).max())
    assert np.all(b - a >= -1e-12 * scale)  # f_B(x^K) ≥ f*_B = 0
    if row["alpha"] is None:
        alphas = np.linspace(0.1, 100.0, 50)
        assert np.all(np.diag(trace.min_T(alphas, alphas - 0.1)) < 0)
        return
    d = np.array([0.0, 0.5, 2.0, 8.0])
    M = np.diag(trace.min_T(row["alpha"] + d, row["beta"] + d))
    assert M[0] >= -1e-6 * scale and np.all(np.diff(M) >= -1e-9 * scale), M


def test_bundled_configs_name_registered_experiments():
    exps = available_experiments()
    cfgs = bundled_configs()
    for name in NAMES:
        assert name in cfgs
        cfg = tomllib.loads(cfgs[name].read_text())
        assert cfg["experiment"] == name and name in exps
        assert "full" in cfg


@pytest.mark.parametrize("name", NAMES)
def test_experiment_runs_and_resumes(name, tmp_path, capsys):
    fn = available_experiments()[name]
    cfg = {"experiment": name, **TINY[name]}
    out = tmp_path / name
    out.mkdir()
    summary = fn(cfg, out, False, False)
    rows = summary["rows"]
    assert len(rows) == 2
    for r in rows:
        assert r["max_replay_error"] == 0.0
        assert r["alpha"] is None or r["alpha"] >= r["beta"] + 0.1 - 1e-9
        _check_region(out, r)
    for f in ("heatmaps.png", "smallest_pair.png", "results.json"):
        assert (out / f).stat().st_size > 500
    res = json.loads((out / "results.json").read_text())
    assert res["experiment"] == name and len(res["rows"]) == 2
    traces = sorted((out / "points").glob("*.trace.json"))
    assert len(traces) == 2
    stamp = [t.stat().st_mtime_ns for t in traces]
    again = fn(cfg, out, False, False)
    assert "resumed" in capsys.readouterr().out
    assert [t.stat().st_mtime_ns for t in traces] == stamp
    assert [r["alpha"] for r in again["rows"]] == [r["alpha"] for r in rows]
    if name == "alphabeta_halfspace":
        assert (out / "halfspace.png").exists()
        assert "aiming_early_negative_fraction" in res["rows"][0]
