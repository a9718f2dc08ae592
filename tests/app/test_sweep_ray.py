"""Sweeps on a real local Ray instance: a grid runs, a killed sweep resumes, failures retry.

One Ray instance for the module (``ray.init(num_cpus=2)``), shut down at the end. The runs
use a model factory that appends one line per call (one call per run) to a record file: the
process, the Ray cluster it runs in, its CPUs and torch threads, and the lossgeometry it
imported; so the tests count executions across processes and drivers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lossgeometry as lg
from lossgeometry.app.cli import app
from lossgeometry.app.outdir import OutputDirBusy, claim
from lossgeometry.app.sweep import SweepResult

ray = pytest.importorskip("ray")
pytest.importorskip("ray.train.torch")

SRC = Path(lg.__file__).resolve().parents[1]
runner = CliRunner()

FACTORY = '''
import os
import signal
import sys
import time

import ray
import torch
from torch import nn


def make(width, d_in, d_out, record, mode="ok", seed=0):
    """An MLP; notes each call in `record`. While `record`.broken exists, mode "raise"
    raises, mode "die" kills its own process and mode "sleep" sleeps for a minute."""
    gcs, cpus = "-", 0.0
    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        gcs = ctx.gcs_address
        if ctx.worker.mode == ray.WORKER_MODE:  # a Ray task or actor, not a driver
            cpus = ctx.get_assigned_resources().get("CPU", 0.0)
    with open(record, "a") as f:
        f.write(
            f"{width} {mode} {os.getpid()} {gcs} {cpus} {torch.get_num_threads()} "
            f"{sys.modules['lossgeometry'].__file__}\\n"
        )
    if os.path.exists(record + ".broken"):
        if mode == "raise":
            raise RuntimeError("the factory fails on purpose")
        if mode == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "sleep":
            time.sleep(60)
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, d_out))
'''


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs; its address. Its workers import this source tree."""
    assert not ray.is_initialized()
    old = os.environ.get("PYTHONPATH")
    paths = [str(SRC)] + [str(Path(p).resolve()) for p in (old or "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)  # the raylet and its workers inherit it
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _factory(tmp_path: Path) -> Path:
    fac = tmp_path / "fac.py"
    fac.write_text(FACTORY)
    return fac


def _config(fac: Path, record: Path, *, width: int = 8, mode: str = "ok") -> dict:
    return {
        "data": {"name": "digits", "n": 16, "one_hot": True},
        "model": {
            "factory": f"{fac}:make",
            "kwargs": {"width": width, "record": str(record), "mode": mode},
        },
        "train": {"steps": 6, "record_every": 2},
        "report": {"sections": ["problem", "training"]},
    }


def _toml(cfg: dict) -> str:
    kw = cfg["model"]["kwargs"]
    return (
        '[data]\nname = "digits"\nn = 16\none_hot = true\n'
        f'[model]\nfactory = "{cfg["model"]["factory"]}"\n'
        f'[model.kwargs]\nwidth = {kw["width"]}\nrecord = "{kw["record"]}"\nmode = "{kw["mode"]}"\n'
        "[train]\nsteps = 6\nrecord_every = 2\n"
        '[report]\nsections = ["problem", "training"]\n'
    )


def _calls(record: Path) -> list[dict]:
    """One dict per factory call, in order."""
    if not record.exists():
        return []
    out = []
    for line in record.read_text().splitlines():
        width, mode, pid, gcs, cpus, threads, src = line.split()
        out.append(
            {
                "width": int(width),
                "mode": mode,
                "pid": int(pid),
                "gcs": gcs,
                "cpus": float(cpus),
                "threads": int(threads),
                "src": src,
            }
        )
    return out


def _seeded(metrics: dict) -> dict:
    out = {k: v for k, v in metrics.items() if "wall_time" not in k}
    assert "training.loss_final" in out
    return out


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_unheld(dirs: list[Path], timeout: float = 60.0) -> None:
    """Wait until no process holds any of ``dirs`` (the killed driver's tasks have ended)."""
    deadline = time.monotonic() + timeout
    for d in dirs:
        while True:
            try:
                with claim(d, "test"):
                    break
            except OutputDirBusy:
                assert time.monotonic() < deadline, f"{d} is still held"
                time.sleep(0.1)


def test_a_process_connected_to_ray_refuses_another_address(tmp_path, cluster):
    cfg = _config(_factory(tmp_path), tmp_path / "never.txt")
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=f"already connected to the Ray cluster at {cluster}"):
        lg.sweep(cfg, {"seed": [0]}, out, ray_address="127.0.0.1:1", progress=False)
    assert not out.exists() and not (tmp_path / "never.txt").exists()


def test_killed_ray_sweep_resumes_with_every_point_run_once(tmp_path, cluster):
    """The CLI joins this test's Ray instance (--ray-address), is killed after 2 points and
    resumed: 4 done, no finished point run again, the numbers those of a local sweep."""
    fac = _factory(tmp_path)
    record = tmp_path / "calls.txt"
    toml = tmp_path / "sweep.toml"
    toml.write_text(_toml(_config(fac, record)))
    out = tmp_path / "sw"
    args = ["sweep", "-c", str(toml), "--trust-config", "-g", "model.kwargs.width=4,6,8,10"]
    args += ["-o", str(out), "--workers", "1", "--no-progress", "--ray-address", cluster]
    names = [f"width={w}" for w in (4, 6, 8, 10)]

    log = (tmp_path / "driver.log").open("w")
    code = "import sys; from lossgeometry.app.cli import main; sys.argv[0] = 'lossgeometry'; main()"
    driver = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 120
        while sum((out / n / "done.json").exists() for n in names) < 2:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the driver did not finish 2 points in time"
            time.sleep(0.05)
    finally:
        driver.kill()  # SIGKILL: no clean-up in the driver; Ray ends its tasks
        driver.wait()
        log.close()
    _wait_unheld([out] + [out / n for n in names if (out / n).exists()])
    finished = [n for n in names if (out / n / "done.json").exists()]
    assert len(finished) >= 2 and finished == names[: len(finished)]  # one at a time, in order
    before = _calls(record)
    assert [c["width"] for c in before[: len(finished)]] == [4, 6, 8, 10][: len(finished)]

    res = runner.invoke(app, args)  # resume from this process, connected to the same cluster
    assert res.exit_code == 0, res.output
    saved = SweepResult.load(out / "sweep.json")
    assert [r.name for r in saved.runs] == names
    assert [r.status for r in saved.runs] == ["skipped" if n in finished else "done" for n in names]
    calls = _calls(record)
    widths = [c["width"] for c in calls]
    for n, w in zip(names, (4, 6, 8, 10), strict=True):
        if n in finished:
            assert widths.count(w) == 1, n  # a finished point never runs again
    assert sorted(widths[len(before) :]) == [  # the resumed sweep ran each other point once
        w for n, w in zip(names, (4, 6, 8, 10), strict=True) if n not in finished
    ]
    # every run ran in a Ray worker of this test's cluster, on this source tree, with the
    # CPUs of one worker of 2: 2 CPUs, 2 torch threads
    assert {c["gcs"] for c in calls} == {cluster}
    assert {c["pid"] for c in calls}.isdisjoint({os.getpid(), driver.pid})
    assert {c["src"] for c in calls} == {lg.__file__}
    assert {(c["cpus"], c["threads"]) for c in calls} == {(2.0, 2)}

    # the numbers are those of the same points run locally in this process: the first point
    # (run by the killed driver) and the last (by the resumed one)
    local = lg.sweep(
        _config(fac, tmp_path / "local.txt"),
        {"model.kwargs.width": [4, 10]},
        tmp_path / "local",
        progress=False,
    )
    assert local.ok
    for a, b in zip(local.runs, [saved.runs[0], saved.runs[-1]], strict=True):
        assert a.name == b.name and b.metrics.keys() == a.metrics.keys()
        for k, v in _seeded(a.metrics).items():
            assert b.metrics[k] == pytest.approx(v, rel=1e-5, nan_ok=True), (b.name, k)
    assert saved.runs[0].metrics["problem.p"] == 4 * 75 + 10


def test_failing_and_dying_points_are_recorded_and_retried(tmp_path, cluster):
    fac = _factory(tmp_path)
    record = tmp_path / "calls.txt"
    Path(f"{record}.broken").touch()
    out = tmp_path / "sw"
    grid = {"model.kwargs.mode": ["ok", "raise", "die"]}
    res = lg.sweep(_config(fac, record), grid, out, workers=2, backend="ray", progress=False)
    assert [r.name for r in res.runs] == ["mode=ok", "mode=raise", "mode=die"]
    assert [r.status for r in res.runs] == ["done", "failed", "failed"]
    raised, died = res.runs[1:]
    assert raised.error.startswith(f"ModelFactoryError: model factory '{fac}:make' raised ")
    assert "RuntimeError: the factory fails on purpose (at fac.py, line " in raised.error
    assert "WorkerCrashedError" in died.error
    for r in (raised, died):
        err = json.loads((out / r.name / "error.json").read_text())
        assert err["error"] == r.error and not (out / r.name / "done.json").exists()
    assert "Traceback" in json.loads((out / "mode=raise" / "error.json").read_text())["traceback"]
    assert math.isnan(died.seconds)
    # an exception is not retried by Ray; a dead worker is, RAY_MAX_RETRIES = 1 time
    modes = [c["mode"] for c in _calls(record)]
    assert (modes.count("ok"), modes.count("raise"), modes.count("die")) == (1, 1, 2)
    assert {(c["cpus"], c["threads"]) for c in _calls(record)} == {(1.0, 1)}  # 2 workers

    # the next call retries the failed points (which pass now) and skips the finished one
    Path(f"{record}.broken").unlink()
    again = lg.sweep(_config(fac, record), grid, out, workers=2, backend="ray", progress=False)
    assert [r.status for r in again.runs] == ["skipped", "done", "done"]
    modes = [c["mode"] for c in _calls(record)]
    assert (modes.count("ok"), modes.count("raise"), modes.count("die")) == (1, 2, 3)
    for r in again.runs[1:]:
        assert (out / r.name / "done.json").exists() and not (out / r.name / "error.json").exists()


def test_ctrl_c_cancels_the_runs_in_flight(tmp_path, cluster, monkeypatch):
    """Ctrl-C in the driver (here: after the first finished run) ends the Ray task of the
    run still in flight at once, which would otherwise sleep on for a minute."""
    fac = _factory(tmp_path)
    record = tmp_path / "calls.txt"
    Path(f"{record}.broken").touch()
    save = SweepResult.save

    def save_then_interrupt(self, path):
        save(self, path)
        if any(r.status == "done" for r in self.runs):
            deadline = time.monotonic() + 60
            while "sleep" not in [c["mode"] for c in _calls(record)]:  # it is in flight
                assert time.monotonic() < deadline
                time.sleep(0.05)
            raise KeyboardInterrupt

    monkeypatch.setattr(SweepResult, "save", save_then_interrupt)
    out = tmp_path / "sw"
    grid = {"model.kwargs.mode": ["ok", "sleep"]}
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        lg.sweep(_config(fac, record), grid, out, workers=2, backend="ray", progress=False)
    (sleeper,) = [c["pid"] for c in _calls(record) if c["mode"] == "sleep"]
    while _alive(sleeper):  # its worker process is killed
        assert time.monotonic() - t0 < 30, "the run in flight was not cancelled"
        time.sleep(0.05)
    assert (out / "mode=ok" / "done.json").exists()
    assert not (out / "mode=sleep" / "done.json").exists()


def test_point_of_two_ranks(tmp_path, cluster):
    """ranks_per_point=2: two Ray Train workers in one gloo group run the analyze point
    data-parallel (each builds the model: two calls); rank 0 alone writes the report and the
    records, whose numbers are a one-process run's."""
    fac = _factory(tmp_path)
    record = tmp_path / "calls.txt"
    out = tmp_path / "sw"
    res = lg.sweep(_config(fac, record), {"seed": [0]}, out, ranks_per_point=2, progress=False)
    (run,) = res.runs
    assert run.status == "done", run.error
    done = json.loads((out / "seed=0" / "done.json").read_text())
    ranks = done["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 2 and r["backend"] == "gloo" for r in ranks)
    assert len({r["pid"] for r in ranks}) == 2 and os.getpid() not in {r["pid"] for r in ranks}
    calls = _calls(record)  # every rank built the model once, each with its 1 CPU
    assert sorted(c["pid"] for c in calls) == sorted(r["pid"] for r in ranks)
    assert all((c["cpus"], c["threads"]) == (1.0, 1) for c in calls)
    assert done["metrics"] == run.metrics and run.metrics["problem.p"] == 8 * 75 + 10
    results = json.loads((out / "seed=0" / "results.json").read_text())
    assert results["meta"]["world_size"] == 2
    assert not (out / ".ray_train" / "seed=0").exists()
    local = lg.sweep(
        _config(fac, tmp_path / "local.txt"), {"seed": [0]}, tmp_path / "local", progress=False
    )
    assert local.ok
    for k, v in _seeded(local.runs[0].metrics).items():
        assert run.metrics[k] == pytest.approx(v, rel=1e-5, nan_ok=True), k


@pytest.mark.slow
def test_point_of_two_ranks_whose_rank_dies_is_recorded_as_failed(tmp_path, cluster):
    """Rank 0 kills its own process: Ray Train restarts the group RAY_MAX_RETRIES = 1 time,
    then the point is recorded as failed (no hang); the next call retries it."""
    fac = _factory(tmp_path)
    record = tmp_path / "calls.txt"
    Path(f"{record}.broken").touch()
    out = tmp_path / "sw"
    cfg = _config(fac, record, mode="die")
    res = lg.sweep(cfg, {"seed": [0]}, out, ranks_per_point=2, progress=False)
    (run,) = res.runs
    assert run.status == "failed" and "Error" in run.error
    err = json.loads((out / "seed=0" / "error.json").read_text())
    assert err["error"] == run.error and not (out / "seed=0" / "done.json").exists()
    assert [c["mode"] for c in _calls(record)] == ["die", "die"]
    Path(f"{record}.broken").unlink()
    again = lg.sweep(cfg, {"seed": [0]}, out, ranks_per_point=2, progress=False)
    assert again.runs[0].status == "done" and len(_calls(record)) == 3
