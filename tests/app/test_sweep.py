"""lg.sweep and `lossgeometry sweep`: grids, run directories, resume, failures, workers, Ray."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import matplotlib
import pytest
import torch
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from lossgeometry.app.commands.sweep import parse_grid, parse_value
from lossgeometry.app.sections.base import SECTIONS, SectionOutput, SectionSpec
from lossgeometry.app.sweep import (
    SweepResult,
    expand_grid,
    load_base_config,
    run_name,
    threads_per_worker,
)
from tests.conftest import tiny_toml

matplotlib.use("Agg")
core = sys.modules["lossgeometry.app.sweep.core"]  # `lg.sweep` is the function, not the module
backends = sys.modules["lossgeometry.app.sweep.backends"]

# a tiny analyze config: 16 digits, a 1-hidden-layer MLP, 6 GD steps, two cheap sections
TINY = tiny_toml(["problem", "training"])

runner = CliRunner()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


SUMMARY_KEYS = {
    "problem": ("p", "n", "k", "overparameterization"),
    "training": ("loss_initial", "loss_final", "steps", "lr", "pl_ratio_min", "wall_time_s"),
}


@pytest.fixture
def summaries(monkeypatch):
    """Give the problem and training sections an explicit summary: these numbers of their
    results. (Sweeps read only ``summary``; the sections' own summaries may differ.)"""
    for name, keys in SUMMARY_KEYS.items():
        spec = SECTIONS[name]

        def fn(ctx, _real=spec.fn, _keys=keys):
            out = _real(ctx)
            return dataclasses.replace(out, summary={k: out.results[k] for k in _keys})

        monkeypatch.setitem(SECTIONS, name, dataclasses.replace(spec, fn=fn))


# --- grids and names (no runs) -----------------------------------------------------------------
def test_expand_grid_product_order_names_and_configs(tiny):
    base = load_base_config(tiny, "analyze")
    pts = expand_grid(base, {"model.width": [8, 16, 32], "seed": [0, 1]})
    assert [p.name for p in pts] == [
        f"width={w},seed={s}" for w in (8, 16, 32) for s in (0, 1)
    ]  # first key slowest
    for p in pts:
        assert p.config["model"]["width"] == p.params["model.width"]
        assert p.config["seed"] == p.params["seed"]
        assert p.config["model"]["depth"] == 1 and p.config["data"]["n"] == 16  # the rest kept
    assert base["model"]["width"] == 12 and base["seed"] == 0  # base untouched
    # floats, bools, strings, lists; unsafe characters become "_"
    assert run_name({"train.lr": 0.001, "data.standardize": False}) == "lr=0.001,standardize=false"
    assert run_name({"data.name": "a b/c"}) == "name=a_b_c"
    assert run_name({"data.classes": [0, 1]}) == "classes=0-1"
    # keys sharing a last part keep the full dotted name
    assert run_name({"model.width": 8, "report.width": 2}) == "model.width=8,report.width=2"
    # a very long name is cut and made unique by a hash
    long_a = run_name({"data.name": "x" * 300 + "a"})
    long_b = run_name({"data.name": "x" * 300 + "b"})
    assert len(long_a) <= 120 and long_a != long_b
    # two values that sanitize to the same name get distinct directories
    pts = expand_grid(base, {"data.name": ["a/b", "a b"]})
    assert len({p.name for p in pts}) == 2 and all(p.name.startswith("name=a_b-") for p in pts)


def test_bad_grid_keys_name_the_key_and_list_valid_ones(tiny, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=r"'model.widht'.*did you mean 'model\.width'"):
        lg.sweep(tiny, {"model.widht": [8]}, out)
    with pytest.raises(ValueError, match=r"'trian.steps'.*top level.*seed.*train"):
        lg.sweep(tiny, {"trian.steps": [1]}, out)
    # keys are checked against the typed config, not only the keys the file sets
    with pytest.raises(ValueError, match=r"'train.stpes'.*did you mean 'train\.steps'"):
        lg.sweep(tiny, {"train.stpes": [1]}, out)
    with pytest.raises(ValueError, match=r"'data.splt'.*no key 'splt' in \[data\]"):
        lg.sweep(tiny, {"data.splt": ["test"]}, out)  # digits has no split
    with pytest.raises(ValueError, match=r"'loss.nme'.*did you mean 'loss\.name'"):
        lg.sweep(tiny, {"loss.nme": ["mse"]}, out)
    with pytest.raises(ValueError, match=r"'report.kernl.top'.*did you mean 'report\.kernel'"):
        lg.sweep(tiny, {"report.kernl.top": [1]}, out)
    # a section's own options are its business: only keys the config sets can be swept
    with pytest.raises(ValueError, match=r"'report.kernel.top'.*add it to the config first"):
        lg.sweep(tiny, {"report.kernel.top": [1]}, out)
    # the built-in MLP has no model.kwargs (that is for model factories)
    with pytest.raises(ValueError, match=r"'model.kwargs.width'.*no key 'kwargs'"):
        lg.sweep(tiny, {"model.kwargs.width": [8]}, out)
    with pytest.raises(ValueError, match=r"'model' is a table.*model\.width"):
        lg.sweep(tiny, {"model": [{"width": 8}]}, out)
    with pytest.raises(ValueError, match=r"'seed' is a value"):
        lg.sweep(tiny, {"seed.x": [1]}, out)
    with pytest.raises(ValueError, match="give a list"):
        lg.sweep(tiny, {"seed": 3}, out)
    with pytest.raises(ValueError, match="empty"):
        lg.sweep(tiny, {"seed": []}, out)
    with pytest.raises(ValueError, match="duplicate"):
        lg.sweep(tiny, {"seed": [1, 1]}, out)
    with pytest.raises(ValueError, match="grid is empty"):
        lg.sweep(tiny, {}, out)
    with pytest.raises(ValueError, match="job must be"):
        lg.sweep(tiny, {"seed": [0]}, out, job="train")
    with pytest.raises(ValueError, match="workers"):
        lg.sweep(tiny, {"seed": [0]}, out, workers=0)
    with pytest.raises(FileNotFoundError):
        lg.sweep(tmp_path / "nope.toml", {"seed": [0]}, out)
    assert not out.exists()  # nothing ran, nothing was written
    # job="run": keys are checked against the experiment's TOML (a bundled name here)
    with pytest.raises(ValueError, match=r"'widht'.*widths"):
        lg.sweep("width_sweep", {"widht": [[8]]}, out, job="run")
    with pytest.raises(ValueError, match=r"bundled experiment.*job='run'"):
        lg.sweep("width_sweep", {"seed": [0]}, out)
    assert not out.exists()


def test_threads_per_worker():
    assert threads_per_worker(1, 2) == 2
    assert threads_per_worker(2, 2) == 1
    assert threads_per_worker(4, 2) == 1  # never 0
    assert threads_per_worker(4, 16) == 4


# --- running, resuming ---------------------------------------------------------------------------
def test_grid_over_schema_keys_the_base_does_not_set(tiny):
    base = load_base_config(tiny, "analyze")
    assert "bias" not in base["model"] and "chunk_size" not in base["loss"]
    pts = expand_grid(base, {"model.bias": [True, False], "loss.chunk_size": [4]})
    assert [p.config["model"]["bias"] for p in pts] == [True, False]
    assert all(p.config["loss"]["chunk_size"] == 4 for p in pts)
    # free tables (optimizer kwargs, factory kwargs, section options): the keys the config sets
    with pytest.raises(ValueError, match=r"'train.kwargs.momentum'.*add it to the config"):
        expand_grid(base, {"train.kwargs.momentum": [0.5]})
    base = load_base_config(
        {**base, "train": {**base["train"], "optimizer": "momentum", "kwargs": {"momentum": 0.9}}},
        "analyze",
    )
    kw = expand_grid(base, {"train.kwargs.momentum": [0.5, 0.8]})
    assert [p.config["train"]["kwargs"] for p in kw] == [{"momentum": 0.5}, {"momentum": 0.8}]
    # an experiment's keys are the keys its TOML sets
    with pytest.raises(ValueError, match=r"'train.steps'.*no key 'train'.*add it to the config"):
        expand_grid({"experiment": "width_sweep", "seeds": [0]}, {"train.steps": [1]})


def test_sweep_runs_writes_configs_and_resumes(tiny, tmp_path, count_reports, summaries):
    out = tmp_path / "sw"
    grid = {"model.width": [8, 16], "seed": [0, 1]}
    res = lg.sweep(tiny, grid, out, progress=False)
    names = ["width=8,seed=0", "width=8,seed=1", "width=16,seed=0", "width=16,seed=1"]
    assert [r.name for r in res.runs] == names and sorted(count_reports) == sorted(names)
    assert [r.status for r in res.runs] == ["done"] * 4 and res.ok and not res.failed
    for r in res.runs:
        d = out / r.name
        assert Path(r.directory) == d
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["model"]["width"] == r.params["model.width"] and cfg["seed"] == r.params["seed"]
        assert cfg["train"]["steps"] == 6 and cfg["report"]["sections"] == ["problem", "training"]
        results = json.loads((d / "results.json").read_text())  # the analyze report
        assert results["config"] == cfg and (d / "index.html").exists()
        # the metrics are exactly the sections' summaries, nothing of their results
        assert r.metrics == {
            f"{sec}.{k}": v
            for sec, rec in results["sections"].items()
            for k, v in rec["summary"].items()
        }
        assert (
            r.metrics["training.loss_final"]
            == results["sections"]["training"]["results"]["loss_final"]
        )
        assert json.loads((d / "done.json").read_text())["metrics"] == r.metrics
    by = {(r.params["model.width"], r.params["seed"]): r.metrics for r in res.runs}
    # p = 64·w + w + w·10 + 10 for the one-hidden-layer MLP on digits
    assert by[8, 0]["problem.p"] == 8 * 75 + 10 and by[16, 1]["problem.p"] == 16 * 75 + 10
    assert by[8, 0]["training.loss_final"] != by[8, 1]["training.loss_final"]  # seeds differ
    assert by[8, 0]["training.loss_final"] < by[8, 0]["training.loss_initial"]
    saved = SweepResult.load(out / "sweep.json")
    assert saved.runs == res.runs and saved.grid == grid

    # resume: nothing reruns, finished files are untouched, numbers come back
    mtimes = {n: (out / n / "done.json").stat().st_mtime_ns for n in names}
    count_reports.clear()
    again = lg.sweep(tiny, grid, out, progress=False)
    assert count_reports == [] and [r.status for r in again.runs] == ["skipped"] * 4
    assert [r.metrics for r in again.runs] == [r.metrics for r in res.runs]
    assert [r.seconds for r in again.runs] == [r.seconds for r in res.runs]
    assert {n: (out / n / "done.json").stat().st_mtime_ns for n in names} == mtimes

    # a grid that grows runs only the new points
    again = lg.sweep(tiny, {"model.width": [8, 16], "seed": [0, 1, 2]}, out, progress=False)
    assert sorted(count_reports) == ["width=16,seed=2", "width=8,seed=2"]
    assert [r.status for r in again.runs].count("skipped") == 4

    # a changed base config reruns its runs (the hash covers the whole merged config)
    count_reports.clear()
    tiny.write_text(TINY.replace("steps = 6", "steps = 4"))
    small = {"model.width": [8], "seed": [0, 1]}
    changed = lg.sweep(tiny, small, out, progress=False)
    assert sorted(count_reports) == names[:2] and all(r.status == "done" for r in changed.runs)
    assert all(r.metrics["training.steps"] == 4 for r in changed.runs)
    assert json.loads((out / names[0] / "config.json").read_text())["train"]["steps"] == 4

    # resume=False reruns everything again, with the same (seeded) numbers
    count_reports.clear()
    fresh = lg.sweep(tiny, small, out, resume=False, progress=False)
    assert sorted(count_reports) == names[:2] and all(r.status == "done" for r in fresh.runs)
    assert [_seeded(r.metrics) for r in fresh.runs] == [_seeded(r.metrics) for r in changed.runs]

    # a change of report options only (which the report's own resume ignores) also starts
    # the run afresh: nothing of the earlier report is left in the run directory
    tiny.write_text(tiny.read_text().replace('["problem", "training"]', '["problem"]'))
    only = lg.sweep(tiny, small, out, progress=False)
    assert [r.status for r in only.runs] == ["done", "done"]
    for r in only.runs:
        assert not any(m.startswith("training.") for m in r.metrics)
        assert not (out / r.name / "sections" / "training.json").exists()
        assert not (out / r.name / "figures" / "training.png").exists()


def test_failed_run_is_recorded_others_finish_and_rerun_retries(tiny, tmp_path, count_reports):
    out = tmp_path / "sw"
    grid = {"dtype": ["float32", "float16"], "seed": [0]}  # float16 is not a supported dtype
    res = lg.sweep(tiny, grid, out, progress=False)
    assert [r.status for r in res.runs] == ["done", "failed"] and not res.ok
    (bad,) = res.failed
    assert bad.name == "dtype=float16,seed=0" and "dtype must be one of" in bad.error
    err = json.loads((out / bad.name / "error.json").read_text())
    assert err["error"] == bad.error and "Traceback" in err["traceback"]
    assert not (out / bad.name / "done.json").exists()
    assert json.loads((out / bad.name / "config.json").read_text())["dtype"] == "float16"
    assert res.counts() == {"done": 1, "skipped": 0, "failed": 1, "pending": 0}
    assert SweepResult.load(out / "sweep.json").failed[0].error == bad.error
    # a rerun skips the finished run and retries the failed one
    count_reports.clear()
    again = lg.sweep(tiny, grid, out, progress=False)
    assert count_reports == ["dtype=float16,seed=0"]
    assert [r.status for r in again.runs] == ["skipped", "failed"]


@pytest.fixture
def fake_job(monkeypatch):
    """Replace the analyze job by an instant one; its metrics are a function of the config.

    Set ``fake_job.interrupt_on = n`` to raise KeyboardInterrupt (Ctrl-C) in the n-th call.
    """
    state = types.SimpleNamespace(calls=[], interrupt_on=None)

    def job(cfg, run_dir, resume, log):
        state.calls.append(run_dir.name)
        if len(state.calls) == state.interrupt_on:
            raise KeyboardInterrupt
        return {"fake.width_times_seed": cfg["model"]["width"] * (cfg["seed"] + 1)}

    monkeypatch.setitem(core.JOB_FUNCTIONS, "analyze", job)
    return state


def test_interrupted_sweep_keeps_finished_runs(tiny, tmp_path, fake_job):
    out = tmp_path / "sw"
    grid = {"seed": [0, 1, 2]}
    fake_job.interrupt_on = 3  # Ctrl-C during the third run
    with pytest.raises(KeyboardInterrupt):
        lg.sweep(tiny, grid, out, progress=False)
    saved = SweepResult.load(out / "sweep.json")
    assert [r.status for r in saved.runs] == ["done", "done", "pending"]
    assert saved.runs[1].metrics == {"fake.width_times_seed": 24}
    assert (out / "seed=1" / "done.json").exists() and not (out / "seed=2" / "done.json").exists()
    fake_job.calls.clear()
    fake_job.interrupt_on = None
    res = lg.sweep(tiny, grid, out, progress=False)
    assert fake_job.calls == ["seed=2"]
    assert [r.status for r in res.runs] == ["skipped", "skipped", "done"]
    assert [r.metrics["fake.width_times_seed"] for r in res.runs] == [12, 24, 36]


def _sections(run_dir: Path) -> dict:
    """The results of each section of a run's report."""
    data = json.loads((run_dir / "results.json").read_text())
    return {k: v["results"] for k, v in data["sections"].items()}


def test_metrics_come_only_from_section_summaries(tiny, tmp_path, monkeypatch):
    """A section's results never become metrics; its summary does (nested tables dotted)."""

    def probe(ctx):
        return SectionOutput(
            results={"x": 1.0, "p": ctx.problem.p},  # internal numbers: not metrics
            html="",
            summary={"lambda_min": 0.25, "init": {"a": 2, "ok": True}, "kind": "dense"},
        )

    monkeypatch.setitem(SECTIONS, "probe", SectionSpec("probe", "Probe", 99, probe, False, ""))
    tiny.write_text(TINY.replace('["problem", "training"]', '["probe"]'))
    res = lg.sweep(tiny, {"seed": [0]}, tmp_path / "sw", progress=False)
    assert res.ok and res.runs[0].metrics == {"probe.lambda_min": 0.25, "probe.init.a": 2}
    stored = json.loads((tmp_path / "sw" / "seed=0" / "results.json").read_text())
    assert stored["sections"]["probe"]["summary"] == {
        "lambda_min": 0.25,
        "init": {"a": 2, "ok": True},
        "kind": "dense",
    }


def _seeded(metrics: dict) -> dict:
    """The metrics a seeded rerun must reproduce exactly (timings left out)."""
    out = {k: v for k, v in metrics.items() if "wall_time" not in k}
    assert "training.loss_final" in out
    return out


FACTORY = '''
import torch
from torch import nn

def make(width, d_in, d_out, record, seed=0):
    """An MLP that also notes the torch thread count of the process that builds it."""
    with open(record, "a") as f:
        f.write(f"{width} {torch.get_num_threads()}\\n")
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, d_out))
'''


def test_workers_2_match_workers_1_and_set_threads(tmp_path, monkeypatch):
    fac = tmp_path / "fac.py"
    fac.write_text(FACTORY)
    rec1, rec2 = tmp_path / "threads1.txt", tmp_path / "threads2.txt"

    def cfg(record):
        return {  # a dict config with a user model factory: widths live in model.kwargs
            "data": {"name": "digits", "n": 16, "one_hot": True},
            "model": {"factory": f"{fac}:make", "kwargs": {"width": 12, "record": str(record)}},
            "train": {"steps": 6, "record_every": 2},
            "report": {"sections": ["problem", "training"]},
        }

    grid = {"model.kwargs.width": [8, 16], "seed": [1]}
    # pretend 6 cores: each of 2 workers must then run torch with 3 threads
    monkeypatch.setattr(backends, "_cores", lambda: 6)
    assert threads_per_worker(2) == 3
    threads_before = torch.get_num_threads()
    one = lg.sweep(cfg(rec1), grid, tmp_path / "w1", progress=False)
    assert torch.get_num_threads() == threads_before  # workers=1 leaves torch threads alone
    two = lg.sweep(cfg(rec2), grid, tmp_path / "w2", workers=2, progress=False)
    assert [r.status for r in one.runs] == ["done"] * 2 == [r.status for r in two.runs]
    assert [r.name for r in two.runs] == [r.name for r in one.runs]  # grid order, not finish order
    for a, b in zip(one.runs, two.runs, strict=True):
        assert a.params == b.params
        # the reports agree (worker processes run the sections' own summaries, so compare the
        # numbers in results.json; and whatever metrics the summaries give)
        ra, rb = (_sections(Path(r.directory)) for r in (a, b))
        for sec, key in (("problem", "p"), ("training", "loss_initial"), ("training", "lr")):
            assert rb[sec][key] == pytest.approx(ra[sec][key], rel=1e-5), key
        assert rb["training"]["loss_final"] == pytest.approx(ra["training"]["loss_final"], rel=1e-5)
        assert b.metrics.keys() == a.metrics.keys()
        for m in a.metrics:
            if "wall_time" not in m and "seconds" not in m:
                assert b.metrics[m] == pytest.approx(a.metrics[m], rel=1e-5, nan_ok=True), m
    assert _sections(Path(one.runs[0].directory))["problem"]["p"] == 8 * 75 + 10  # swept width
    # every build of a model (one per run) in a worker saw max(1, cores // 2) threads
    seen = [line.split() for line in rec2.read_text().splitlines()]
    assert sorted(int(w) for w, _ in seen) == [8, 16]
    assert {int(t) for _, t in seen} == {3}
    assert {int(t) for _, t in (x.split() for x in rec1.read_text().splitlines())} == {
        threads_before
    }


def test_job_run_experiment(tmp_path):
    cfg = {
        "experiment": "width_sweep",
        "widths": [4, 8],
        "seeds": [0],
        "variants": ["linear"],
        "depth": 2,
        "activation": "tanh",
        "bottleneck": 4,
        "dtype": "float64",
        "fit_min_width": 0,
        "data": {"name": "synthetic-regression", "n": 4, "d": 3, "k": 1},
        "hessian": {"restarts": 1},
    }
    res = lg.sweep(cfg, {"data.n": [4, 5]}, tmp_path / "sw", job="run", progress=False)
    assert [r.name for r in res.runs] == ["n=4", "n=5"] and res.ok
    for r in res.runs:
        d = Path(r.directory)
        summary = json.loads((d / "summary.json").read_text())
        assert r.metrics["linear.hessian_slope"] == summary["linear"]["hessian_slope"]
        assert (
            json.loads((d / "results.json").read_text())["config"]["data"]["n"]
            == (r.params["data.n"])
        )
        assert json.loads((d / "config.json").read_text())["data"]["n"] == r.params["data.n"]
    assert res.runs[0].metrics != res.runs[1].metrics
    assert res.headline()[0] == "linear.hessian_slope"  # no report metrics: the first ones


# --- Ray -------------------------------------------------------------------------------------
def test_ray_backend_missing_gives_install_hint(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'lossgeometry\[ray\]'"):
        lg.sweep(tiny, {"seed": [0]}, tmp_path / "sw", backend="ray")
    assert not (tmp_path / "sw").exists()
    res = runner.invoke(
        app, ["sweep", "-c", str(tiny), "--grid", "seed=0", "--backend", "ray", "-o", "x"]
    )
    assert res.exit_code == 2 and "pip install 'lossgeometry[ray]'" in " ".join(res.output.split())


def test_options_that_run_on_ray_need_backend_ray(tiny, tmp_path):
    out = tmp_path / "never"
    for kw, msg in (
        ({"ranks_per_point": 0}, "ranks_per_point must be a positive integer"),
        ({"ranks_per_point": True}, "ranks_per_point must be a positive integer"),
        ({"backend": "local", "ranks_per_point": 2}, "use backend='ray'"),
        ({"backend": "local", "ray_address": "auto"}, "use backend='ray'"),
    ):
        with pytest.raises(ValueError, match=msg):
            lg.sweep(tiny, {"seed": [0]}, out, progress=False, **kw)
    args = ["sweep", "-c", str(tiny), "-g", "seed=0", "-o", str(out), "--backend", "local"]
    res = runner.invoke(app, [*args, "--ray-address", "auto"])
    assert res.exit_code == 2 and "use backend='ray'" in res.output
    res = runner.invoke(app, [*args, "--ranks-per-point", "0"])
    assert res.exit_code == 2 and "--ranks-per-point" in res.output
    assert not out.exists()


# --- the command line -------------------------------------------------------------------------
def test_parse_grid_values():
    assert parse_value("64") == 64 and isinstance(parse_value("64"), int)
    assert parse_value("0.5") == 0.5 and parse_value("1e-3") == 0.001
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("tanh") == "tanh"
    assert parse_grid(["model.width=64,128", "train.lr=0.5", "model.activation=tanh,relu"]) == {
        "model.width": [64, 128],
        "train.lr": [0.5],
        "model.activation": ["tanh", "relu"],
    }
    for bad in (["width"], ["=1,2"], ["seed="], ["seed=0", "seed=1"]):
        with pytest.raises(ValueError, match="--grid"):
            parse_grid(bad)


def test_cli_end_to_end(tiny, tmp_path):
    out = tmp_path / "cli"
    args = ["sweep", "-c", str(tiny), "--grid", "model.width=8,16", "-g", "seed=0"]
    args += ["-o", str(out), "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "sweep: 2 done" in res.output and "sweep.json" in res.output
    saved = SweepResult.load(out / "sweep.json")
    assert [r.params for r in saved.runs] == [
        {"model.width": 8, "seed": 0},
        {"model.width": 16, "seed": 0},
    ]
    assert json.loads((out / "width=16,seed=0" / "config.json").read_text())["model"]["width"] == 16
    res = runner.invoke(app, args)  # resume
    assert res.exit_code == 0 and "sweep: 2 skipped" in res.output and "done" not in res.output
    res = runner.invoke(app, [*args, "--fresh"])
    assert res.exit_code == 0 and "sweep: 2 done" in res.output
    # a failing run: exit 1, the error printed, the other run kept
    res = runner.invoke(
        app, ["sweep", "-c", str(tiny), "-g", "dtype=float32,float16", "-o", str(tmp_path / "f")]
    )
    assert res.exit_code == 1 and "1 done, 1 failed" in res.output
    assert "dtype must be one of" in res.output
    assert (tmp_path / "f" / "dtype=float32" / "done.json").exists()
    # usage errors: clean exits with status 2
    res = runner.invoke(app, ["sweep", "-c", str(tiny), "--grid", "model.widht=8", "-o", "x"])
    assert res.exit_code == 2 and "model.widht" in res.output and "model.width" in res.output
    res = runner.invoke(app, ["sweep", "-c", str(tiny), "-o", "x"])
    assert res.exit_code == 2 and "--grid" in res.output
    res = runner.invoke(app, ["sweep", "-c", str(tiny), "--grid", "seed", "-o", "x"])
    assert res.exit_code == 2 and "KEY=V1,V2" in res.output
    res = runner.invoke(app, ["sweep", "width_sweep", "-c", str(tiny), "--grid", "seed=0"])
    assert res.exit_code == 2 and "not both" in res.output
