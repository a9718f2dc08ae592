"""The α-β experiments at a tiny size: files, JSON rows, resume; bundled configs parse."""

import json
import sys

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
            "sps": {"optimizer": "SPSMax", "lr": 1.0, "kwargs": {"c": 0.5}},
        },
    },
    "alphabeta_halfspace": {
        "per_class": 5,
        "steps": 30,
        "seeds": [0],
        "inits": [[1.0, -1.0, -3.0], [0.0, 0.0, 0.0]],
    },
}


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
