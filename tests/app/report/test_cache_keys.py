"""The analyze report's cache keys: one test per input; changing it recomputes, not changing
it reuses (issue #16, "Wrong answers served from the cache" 1 and 2)."""

from __future__ import annotations

import os
import sys

import pytest

from lossgeometry.app.outdir import keys
from lossgeometry.app.report.build import build_report
from lossgeometry.app.sections.base import SECTIONS, SectionOutput, SectionSpec
from tests.conftest import tiny_toml
from tests.data.conftest import make_mnist, write_mnist_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BASE = tomllib.loads(tiny_toml(["problem", "probe"], width=8))


@pytest.fixture
def probe(monkeypatch):
    """A cheap section whose numbers depend on its option ``top`` and on the problem's p."""
    calls: list[dict] = []

    def fn(ctx):
        calls.append(dict(ctx.options))
        top = int(ctx.options.get("top", 1))
        return SectionOutput(
            results={"top": top, "eigenvalues": [float(i) for i in range(top)], "p": ctx.problem.p},
            html=f"<p>top {top}</p>",
            summary={"top": top},
        )

    monkeypatch.setitem(SECTIONS, "probe", SectionSpec("probe", "Probe", 99, fn, False, ""))
    return calls


def _cfg(**tables):
    """The tiny config with ``tables`` merged in (a ``model`` with a factory replaces it)."""
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for k, v in tables.items():
        merged = isinstance(v, dict) and "factory" not in v
        cfg[k] = {**cfg.get(k, {}), **v} if merged else v
    return cfg


def _run(cfg, out):
    """Build the report; return (log lines, results.json)."""
    import json

    lines: list[str] = []
    build_report(cfg, out, progress=False, log=lines.append)
    return lines, json.loads((out / "results.json").read_text())


def _reused(lines):
    """What the run reused: the names of 'NAME: reused' lines ('training' included).

    ("reusing the training run in PATH" is how earlier versions said it.)
    """
    got = {ln.split(":")[0].removeprefix("section ") for ln in lines if ln.endswith(": reused")}
    return got | (
        {"training"} if any(ln.startswith("reusing the training") for ln in lines) else set()
    )


def test_section_options_are_in_the_key_and_only_that_section_reruns(tmp_path, probe):
    out = tmp_path / "r"
    cfg = _cfg(report={"sections": ["problem", "probe"], "probe": {"top": 2}})
    _, res = _run(cfg, out)
    assert res["sections"]["probe"]["results"]["eigenvalues"] == [0.0, 1.0]
    lines, _ = _run(cfg, out)  # unchanged: everything reused
    assert _reused(lines) == {"training", "problem", "probe"} and len(probe) == 1
    cfg["report"]["probe"] = {"top": 4}  # the defect: this used to keep the two old numbers
    lines, res = _run(cfg, out)
    assert res["sections"]["probe"]["results"]["eigenvalues"] == [0.0, 1.0, 2.0, 3.0]
    assert res["config"]["report"]["probe"] == {"top": 4}
    assert _reused(lines) == {"training", "problem"} and probe == [{"top": 2}, {"top": 4}]


def test_problem_config_is_in_the_key(tmp_path, probe):
    out = tmp_path / "r"
    _run(_cfg(), out)
    lines, res = _run(_cfg(), out)
    assert _reused(lines) == {"training", "problem", "probe"}
    assert res["sections"]["probe"]["results"]["p"] == _p(8)
    lines, res = _run(_cfg(model={"width": 16}), out)
    assert _reused(lines) == set() and res["sections"]["probe"]["results"]["p"] == _p(16)
    lines, res = _run(_cfg(model={"width": 16}, seed=1), out)
    assert _reused(lines) == set() and len(probe) == 3 and res["config"]["seed"] == 1


FACTORY = """from torch import nn


def make(d_in, d_out):
    return nn.Sequential(nn.Linear(d_in, {w}), nn.Tanh(), nn.Linear({w}, d_out))
"""


def _p(w: int) -> int:
    return 64 * w + w + w * 10 + 10  # one hidden layer on digits (64 inputs, 10 outputs)


def test_factory_file_content_is_in_the_key(tmp_path, probe):
    fm = tmp_path / "fm.py"
    fm.write_text(FACTORY.format(w=8))
    cfg = _cfg(model={"factory": f"{fm}:make"})
    out = tmp_path / "r"
    _, res = _run(cfg, out)
    assert res["sections"]["problem"]["results"]["p"] == _p(8)
    lines, _ = _run(cfg, out)
    assert _reused(lines) == {"training", "problem", "probe"}
    fm.write_text(FACTORY.format(w=32))  # the defect: the old p was reused
    lines, res = _run(cfg, out)
    assert _reused(lines) == set()
    assert res["sections"]["problem"]["results"]["p"] == _p(32)
    assert res["sections"]["probe"]["results"]["p"] == _p(32)
    assert res["meta"]["inputs"]["factory"]["file"] == str(fm.resolve())


def test_factory_module_source_is_in_the_key(tmp_path, probe, monkeypatch):
    pkg = tmp_path / "lg_cache_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fm.py").write_text(FACTORY.format(w=8))
    monkeypatch.syspath_prepend(str(tmp_path))
    # found without importing it: the key is computed before the factory is loaded
    fp = keys.factory_fingerprint("lg_cache_pkg.fm:make")
    assert fp["file"] == str((pkg / "fm.py").resolve()) and "lg_cache_pkg.fm" not in sys.modules
    cfg = _cfg(model={"factory": "lg_cache_pkg.fm:make"})
    out = tmp_path / "r"
    _, res = _run(cfg, out)
    assert res["sections"]["problem"]["results"]["p"] == _p(8)
    lines, _ = _run(cfg, out)
    assert _reused(lines) == {"training", "problem", "probe"}
    (pkg / "fm.py").write_text(FACTORY.format(w=32))
    monkeypatch.delitem(sys.modules, "lg_cache_pkg.fm")  # a new process imports it afresh
    lines, res = _run(cfg, out)
    assert _reused(lines) == set()
    assert res["sections"]["problem"]["results"]["p"] == _p(32)


def test_local_data_files_are_in_the_key(tmp_path, probe):
    root = tmp_path / "mnist"
    root.mkdir()
    write_mnist_dir(root, *make_mnist(n=20, rows=8, cols=8, seed=0))
    cfg = _cfg(data={"name": f"mnist:{root}", "n": 16})
    out = tmp_path / "r"
    _, res0 = _run(cfg, out)
    lines, _ = _run(cfg, out)
    assert _reused(lines) == {"training", "problem", "probe"}
    img, _ = write_mnist_dir(root, *make_mnist(n=20, rows=8, cols=8, seed=1))  # new pixels
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # even on a coarse clock
    lines, res = _run(cfg, out)
    assert _reused(lines) == set() and len(probe) == 2
    assert res["meta"]["inputs"]["data"]["files"] != res0["meta"]["inputs"]["data"]["files"]


def test_versions_are_in_the_key(tmp_path, probe, monkeypatch):
    out = tmp_path / "r"
    _run(_cfg(), out)
    lines, _ = _run(_cfg(), out)
    assert _reused(lines) == {"training", "problem", "probe"}
    real = keys.versions()
    monkeypatch.setattr(keys, "versions", lambda: {**real, "torch": "99.0"})
    lines, res = _run(_cfg(), out)
    assert _reused(lines) == set() and res["meta"]["inputs"]["versions"]["torch"] == "99.0"


def test_fresh_recomputes_everything(tmp_path, probe):
    out = tmp_path / "r"
    _run(_cfg(), out)
    lines: list[str] = []
    build_report(_cfg(), out, resume=False, progress=False, log=lines.append)
    assert _reused(lines) == set() and len(probe) == 2
