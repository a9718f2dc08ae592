"""`lossgeometry run`: grid points are keyed by every input, not by their label (issue #16
defect 3): a changed seed, lr, step count or data dimension recomputes; an unchanged one, or a
grown grid, reuses; `--fresh` recomputes everything."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from lossgeometry.app.cli import app
from lossgeometry.app.experiments import available_experiments
from lossgeometry.app.experiments.plstar_common import cached_point
from lossgeometry.app.outdir import CorruptCacheError, inputs, keys
from tests.data.conftest import make_mnist, write_mnist_dir

runner = CliRunner()


def _stamps(out):
    return {p.name: p.stat().st_mtime_ns for p in sorted((out / "points").glob("*.json"))}


def _manifold(out, **over):
    cfg = {
        "experiment": "manifold_dimension",
        "datasets": ["synthetic-regression"],
        "widths": {"synthetic-regression": [4]},
        "samples": {"synthetic-regression": [10]},
        "synthetic": {"d": 3},
        "pca_max_dim": 0,
        "degenerate": {"enabled": False},
        **over,
    }
    return available_experiments()["manifold_dimension"](cfg, out, False, False)["table"]


def test_manifold_points_are_keyed_by_their_settings_not_their_label(tmp_path):
    out = tmp_path / "md"
    out.mkdir()
    (row,) = _manifold(out)
    assert row["p"] == 4 * 4 + 5  # (d + 1) w + (w + 1) k
    stamps = _stamps(out)
    assert _manifold(out) == [row] and _stamps(out) == stamps  # unchanged: reused
    # the defect: the label `synthetic-regression_w4_n10` kept the d = 3 row
    (row6,) = _manifold(out, synthetic={"d": 6})
    assert row6["p"] == 7 * 4 + 5
    saved = json.loads((out / "points" / "synthetic-regression_w4_n10.json").read_text())
    assert saved["key"]["synthetic"] == {"d": 6, "k": 1} and saved["key"]["dataset"] == (
        "synthetic-regression"
    )
    stamps = _stamps(out)
    _manifold(out, synthetic={"d": 6}, seed=1)
    assert _stamps(out) != stamps
    assert (
        json.loads((out / "points" / "synthetic-regression_w4_n10.json").read_text())["key"]["seed"]
        == 1
    )


TINY_WIDTH = {
    "experiment": "alphabeta_width",
    "n": 48,
    "widths": [8, 16],
    "first_width": 16,
    "steps": 12,
    "batch_size": 16,
    "seeds": [0],
}


def _alphabeta(out, capsys, base=None, **over):
    """Run a tiny α-β sweep (default: ``TINY_WIDTH``); return (rows by label, labels resumed)."""
    cfg = {**(base or TINY_WIDTH), **over}
    rows = available_experiments()[cfg["experiment"]](cfg, out, False, False)["rows"]
    text = capsys.readouterr().out
    resumed = {r["setting"] for r in rows if f"{r['setting']}: done earlier (resumed)" in text}
    return {r["setting"]: r for r in rows}, resumed


def test_alphabeta_settings_are_keyed_by_every_setting(tmp_path, capsys):
    out = tmp_path / "ab"
    out.mkdir()
    rows, resumed = _alphabeta(out, capsys)
    assert resumed == set()
    again, resumed = _alphabeta(out, capsys)
    assert resumed == {"width_8", "width_16"}
    assert [r["alpha"] for r in again.values()] == [r["alpha"] for r in rows.values()]
    # the defect: a changed lr or step count kept the old rows under `width_8`
    lr, resumed = _alphabeta(out, capsys, lr=0.05)
    assert resumed == set()
    assert lr["width_8"]["final_loss_mean"] != rows["width_8"]["final_loss_mean"]
    steps, resumed = _alphabeta(out, capsys, lr=0.05, steps=8)
    assert resumed == set() and steps["width_8"]["steps"] == 8
    # a grown grid reuses the settings it has
    _, resumed = _alphabeta(out, capsys, lr=0.05, steps=8, widths=[4, 8, 16])
    assert resumed == {"width_8", "width_16"}


def test_a_table_of_optimizers_reruns_only_the_changed_row(tmp_path, capsys):
    out = tmp_path / "ab"
    out.mkdir()
    table = {
        "sgd": {"optimizer": "sgd", "lr": 0.1},
        "adam": {"optimizer": "adam", "lr": 0.01},
    }
    base = {"experiment": "alphabeta_optimizers", "n": 48, "width": 16, "steps": 6}
    base |= {"batch_size": 16, "seeds": [0]}
    _alphabeta(out, capsys, base, optimizers=table)
    table["adam"] = {"optimizer": "adam", "lr": 0.02}
    _, resumed = _alphabeta(out, capsys, base, optimizers=table)
    assert resumed == {"sgd"}


def test_a_corrupt_trace_is_named(tmp_path, capsys):
    out = tmp_path / "ab"
    out.mkdir()
    _alphabeta(out, capsys, widths=[8])
    trace = out / "points" / "width_8.trace.json"
    trace.write_text('{"alpha": [')
    with pytest.raises(CorruptCacheError, match=r"width_8\.trace\.json is corrupt.*--fresh"):
        _alphabeta(out, capsys, widths=[8])


def test_cached_point_inputs_versions_and_data_files(tmp_path, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    root = tmp_path / "mnist"
    root.mkdir()
    write_mnist_dir(root, *make_mnist(n=4, rows=2, cols=2))
    named = inputs({"data": {"name": f"mnist:{root}"}})
    assert named["data"]["dir"] == str(root.resolve())
    assert cached_point(tmp_path, "a", {"k": 1}, compute, inputs=named) == {"n": 1}
    again = inputs({"data": {"name": f"mnist:{root}"}})
    assert cached_point(tmp_path, "a", {"k": 1}, compute, inputs=again) == {"n": 1}
    img, _ = write_mnist_dir(root, *make_mnist(n=4, rows=2, cols=2, seed=3))
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = inputs({"data": {"name": f"mnist:{root}"}})
    assert cached_point(tmp_path, "a", {"k": 1}, compute, inputs=changed) == {"n": 2}
    # the default inputs are the versions
    assert cached_point(tmp_path, "b", {"k": 1}, compute) == {"n": 3}
    assert cached_point(tmp_path, "b", {"k": 1}, compute) == {"n": 3}
    real = keys.versions()
    monkeypatch.setattr(keys, "versions", lambda: {**real, "lossgeometry": "99"})
    monkeypatch.setattr(
        "lossgeometry.app.experiments.plstar_common.versions", keys.versions, raising=True
    )
    assert cached_point(tmp_path, "b", {"k": 1}, compute) == {"n": 4}


def test_run_fresh_recomputes_every_point(tmp_path):
    cfg = tmp_path / "hs.toml"
    cfg.write_text(
        'experiment = "alphabeta_halfspace"\nper_class = 5\nsteps = 20\nseeds = [0]\n'
        "inits = [[1.0, -1.0, -3.0]]\n"
    )
    out = tmp_path / "hs"
    args = ["run", str(cfg), "-o", str(out), "--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "init_0: done earlier (resumed)" in res.output
    res = runner.invoke(app, [*args, "--fresh"])
    assert res.exit_code == 0, res.output
    assert "resumed" not in res.output and "init_0: smallest pair" in res.output
