"""One run per output directory (issue #16 defect 4), and output paths or files of an earlier run
that cannot be used: one clear line naming the path, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lossgeometry
from lossgeometry.app.cli import app
from lossgeometry.app.outdir import (
    OutputDirBusy,
    OutputDirError,
    claim,
    guard,
)
from lossgeometry.app.report.build import build_report
from tests.conftest import tiny_toml

TINY = tiny_toml(["problem"], width=8)
runner = CliRunner()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def _flat(text: str) -> str:
    """The text without any whitespace (the console wraps long lines, even inside paths)."""
    return "".join(text.split())


def _analyze(tiny: Path, out: Path, *extra: str):
    return runner.invoke(app, ["analyze", "-c", str(tiny), "-o", str(out), "--no-progress", *extra])


def test_a_second_run_into_a_held_directory_is_refused_at_once(tiny, tmp_path):
    out = tmp_path / "rep"
    with claim(out, "analyze"):
        holder = json.loads((out / guard.HOLDER_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputDirBusy) as e:
            build_report(_tiny_cfg(), out, log=lambda s: None)
        msg = str(e.value)
        assert str(out) in msg and f"analyze, pid {os.getpid()} on {socket.gethostname()}" in msg
        assert f"started {holder['started']}" in msg
        assert not (out / "index.html").exists() and not (out / ".staging").exists()
        res = _analyze(tiny, out)
        assert res.exit_code == 2 and _flat("in use by another lossgeometry run") in _flat(
            res.output
        )
        assert "Traceback" not in res.output
    assert not (out / guard.HOLDER_FILE).exists()  # released, holder removed
    assert _analyze(tiny, out).exit_code == 0


def _tiny_cfg() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads(TINY)


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tiny, tmp_path):
    """The audit's case: two processes on one directory. The holder is killed -9: its lock
    goes with it (an OS lock), so the next run needs no cleanup."""
    out = tmp_path / "rep"
    src = str(Path(lossgeometry.__file__).resolve().parents[1])
    code = (
        "import sys\nfrom lossgeometry.app.outdir import claim\n"
        "with claim(sys.argv[1], 'sweep'):\n    print('held', flush=True)\n    sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        res = _analyze(tiny, out)
        assert res.exit_code == 2, res.output
        text = _flat(res.output)
        assert _flat(f"sweep, pid {proc.pid} on {socket.gethostname()}") in text
        assert _flat(str(out)) in text
        assert not (out / "results.json").exists()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert _analyze(tiny, out).exit_code == 0


@pytest.mark.parametrize("command", ["analyze", "sweep", "run"])
def test_an_output_path_that_is_a_file_is_one_clear_line(tiny, tmp_path, command):
    path = tmp_path / "taken"
    path.write_text("not a directory")
    args = {
        "analyze": ["analyze", "-c", str(tiny)],
        "sweep": ["sweep", "-c", str(tiny), "-g", "seed=0"],
        "run": ["run", "alphabeta_halfspace"],
    }[command]
    res = runner.invoke(app, [*args, "-o", str(path), "--no-progress"])
    assert res.exit_code == 2, res.output
    assert _flat(f"output path {path} is a file") in _flat(res.output)
    assert "Traceback" not in res.output and path.read_text() == "not a directory"


@pytest.mark.parametrize("command", ["analyze", "sweep"])
def test_a_read_only_output_directory_is_one_clear_line(tiny, tmp_path, monkeypatch, command):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: fail the first write as the kernel would
        import filelock

        def denied(self, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", self.lock_file)

        monkeypatch.setattr(filelock.FileLock, "acquire", denied)
    args = ["analyze", "-c", str(tiny)] if command == "analyze" else ["sweep", "-c", str(tiny)]
    args += ["-g", "seed=0"] if command == "sweep" else []
    res = runner.invoke(app, [*args, "-o", str(ro), "--no-progress"])
    ro.chmod(0o755)
    assert res.exit_code == 2, res.output
    text = _flat(res.output)
    assert _flat(f"cannot write to the output directory {ro}") in text
    assert _flat("Permission denied") in text
    assert "Traceback" not in res.output


def test_a_full_disk_is_one_clear_error_naming_the_directory(tmp_path, monkeypatch):
    build = sys.modules["lossgeometry.app.report.build"]

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build, "atomic_write_json", full)
    out = tmp_path / "rep"
    with pytest.raises(OutputDirError, match=rf"{out}.*No space left on device"):
        build_report(_tiny_cfg(), out, log=lambda s: None)


def test_errors_of_the_data_are_not_taken_for_the_output_directory(tmp_path):
    cfg = _tiny_cfg()
    cfg["data"] = {"name": f"mnist:{tmp_path / 'missing'}"}
    with pytest.raises(Exception) as e:
        build_report(cfg, tmp_path / "rep", log=lambda s: None)
    assert not isinstance(e.value, OutputDirError) and "missing" in str(e.value)


@pytest.mark.parametrize("name", ["state.json", "sections/problem.json", "trajectory.json"])
def test_a_corrupt_file_of_an_earlier_run_is_named_and_fresh_fixes_it(tiny, tmp_path, name):
    out = tmp_path / "rep"
    assert _analyze(tiny, out).exit_code == 0
    (out / name).write_text('{"truncated": ')
    res = _analyze(tiny, out)
    assert res.exit_code == 2
    text = _flat(res.output)
    assert _flat(f"{out / name} is corrupt") in text and "--fresh" in text
    assert "Traceback" not in res.output
    assert "JSONDecodeError:" in text or "notvalidJSON" in text  # the parse error, shown
    res = _analyze(tiny, out, "--fresh")
    assert res.exit_code == 0, res.output
    json.loads((out / name).read_text())  # rewritten
