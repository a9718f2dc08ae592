"""Docs as tests: every ```python block of README.md and docs/*.md, and every examples/*.py.

A document's python blocks run in order in one fresh namespace, in a fresh subprocess whose
working directory is a temporary folder: the way a reader pastes them into one session (a
later block may use the ``problem`` of an earlier one). Tracebacks point at the document's
own lines. Every block runs at the size the document shows; the sizes are small on purpose
(3–10 s a document on the shared 2-core machine; docs/usage.md ~15 s, its sweep starts a
2-process pool), so nothing here is marked slow.

Markers (an HTML comment on the line right before the fence, invisible when rendered):

* ``<!-- signature -->``: the block is a function signature (``lg.f(a, b=1, *, c=None)``),
  not a call. It is checked instead of run: every parameter it names exists, in that
  position and kind, with the default it shows (so a changed default fails here).
* ``<!-- no-run: REASON -->``: the block is not run; the reason is required. Use sparingly.

Blocks in other languages (bash, TOML, output) are not python blocks and are not run.
``examples/*.py`` run as scripts (``python examples/X.py``) with ``LOSSGEOMETRY_SMALL=1``,
which an example may read to shrink its sizes; each ``examples/*.toml`` must load as a config.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
CONFIGS = sorted((ROOT / "examples").glob("*.toml"))
TIMEOUT = 600  # seconds per document or script (each takes well under a minute alone)

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*(signature|no-run)\s*(?::\s*(.*?))?\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its language, its text, its marker."""

    path: Path
    line: int  # 1-based line of the first code line (after the opening fence)
    lang: str
    code: str
    marker: str | None  # None, "signature" or "no-run"
    reason: str | None

    @property
    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file, with the marker comment before each."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mk = _MARKER.search(before)
        out.append(
            Block(
                path=path,
                line=text[: m.start(2)].count("\n") + 1,
                lang=m.group(1).lower(),
                code=m.group(2),
                marker=mk.group(1) if mk else None,
                reason=(mk.group(2) or None) if mk else None,
            )
        )
    return out


def python_blocks(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang in ("python", "py")]


def _runnable(path: Path) -> list[Block]:
    return [b for b in python_blocks(path) if b.marker is None]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    env["LOSSGEOMETRY_SMALL"] = "1"
    return env


_DRIVER = """\
import json, sys
if __name__ == "__main__":
    ns = {"__name__": "__main__"}
    for b in json.load(open(sys.argv[1], encoding="utf-8")):
        print(f"--- running {b['where']}", flush=True)
        exec(compile("\\n" * (b["line"] - 1) + b["code"], b["file"], "exec"), ns)
"""


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if res.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed (exit {res.returncode}) in {cwd}\n"
            f"--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-8000:]}",
            pytrace=False,
        )
    return res


# ---------------------------------------------------------------------------------------------
# markdown


def test_every_document_is_collected_and_markers_are_justified():
    names = {p.name for p in DOCS}
    assert {"README.md", "usage.md", "kernel.md", "curvature.md", "plstar.md"} <= names
    assert {"manifold.md", "alphabeta.md", "byom.md"} <= names
    for linked in ("README.md", "docs/usage.md"):  # the "Bring your own model" page is found
        assert "byom.md" in (ROOT / linked).read_text(encoding="utf-8"), linked
    for path in DOCS:
        for b in blocks(path):
            if b.marker == "no-run":
                assert b.reason, f"{b.where}: `<!-- no-run: REASON -->` needs a reason"
            if b.marker is not None:
                assert b.lang in ("python", "py"), f"{b.where}: a marker on a {b.lang!r} block"


def test_fence_parser_reads_markers(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text(
        "text\n```python\nx = 1\n```\n<!-- no-run: needs a GPU -->\n```python\ny\n```\n"
        "<!-- signature -->\n```python\nf(a, *, b=1)\n```\n```bash\nls\n```\n",
        encoding="utf-8",
    )
    got = blocks(doc)
    assert [(b.line, b.lang, b.marker, b.reason) for b in got] == [
        (3, "python", None, None),
        (7, "python", "no-run", "needs a GPU"),
        (11, "python", "signature", None),
        (14, "bash", None, None),
    ]
    assert [b.code for b in _runnable(doc)] == ["x = 1\n"]


@pytest.mark.parametrize(
    "path", [p for p in DOCS if _runnable(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_document_python_blocks_run(path, tmp_path):
    spec = [
        {"where": b.where, "file": str(b.path), "line": b.line, "code": b.code}
        for b in _runnable(path)
    ]
    (tmp_path / "blocks.json").write_text(json.dumps(spec), encoding="utf-8")
    driver = tmp_path / "run_blocks.py"
    driver.write_text(_DRIVER, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    res = _run([sys.executable, str(driver), str(tmp_path / "blocks.json")], work)
    assert res.stdout.count("--- running") == len(spec)


_WORK_TRACKING = re.compile(
    r"\bthe issue\b|\bissue's\b|\bissue text\b|\btarget (is )?(not )?met\b|\b\d+(\.\d+)?× target\b"
    r"|\bTarget:|\bTarget \"",
    re.I,
)


def test_documents_describe_measurements_not_work_tracking():
    """Docs say what was measured, not how a work item went ("the 3× target is not met")."""
    bad = []
    for path in DOCS:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _WORK_TRACKING.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "work-tracking words in the docs:\n" + "\n".join(bad)
    assert _WORK_TRACKING.search("**The 3× target is not met against PyHessian**")
    assert _WORK_TRACKING.search("### The issue's own cases: K and λ_min")


# ---------------------------------------------------------------------------------------------
# signatures


def _documented_signature(b: Block) -> tuple[str, ast.arguments]:
    """``lg.f(a, b=1, *, c=None) -> R`` as (``"lg.f"``, its parsed arguments)."""
    text = " ".join(b.code.split())
    m = re.fullmatch(r"([\w.]+)\((.*)\)\s*(?:->\s*[\w.\[\], |]+)?", text)
    assert m, f"{b.where}: a signature block must read `name(params) [-> type]`"
    tree = ast.parse(f"def _f({m.group(2)}): ...")
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    return m.group(1), fn.args


def _resolve(dotted: str):
    import lossgeometry as lg

    obj = {"lg": lg, "lossgeometry": lg}[dotted.split(".")[0]]
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part, None) or importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def _signature_blocks() -> list[Block]:
    return [b for p in DOCS for b in python_blocks(p) if b.marker == "signature"]


def test_signature_checker_catches_a_wrong_default(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text(
        "<!-- signature -->\n```python\n"
        "lg.kernel_spectrum(problem, w=None, *, num_eigenvalues=3)\n```\n",
        encoding="utf-8",
    )
    (b,) = python_blocks(doc)
    with pytest.raises(AssertionError, match="default"):
        _check_signature(b)


def _check_signature(b: Block) -> None:
    name, args = _documented_signature(b)
    real = inspect.signature(_resolve(name))
    params = list(real.parameters.values())
    P = inspect.Parameter
    documented = [(a, P.POSITIONAL_OR_KEYWORD) for a in args.args]
    documented += [(a, P.KEYWORD_ONLY) for a in args.kwonlyargs]
    pos_defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    defaults = pos_defaults + list(args.kw_defaults)
    positional = [p for p in params if p.kind == P.POSITIONAL_OR_KEYWORD]
    for i, ((arg, kind), default) in enumerate(zip(documented, defaults, strict=True)):
        assert arg.arg in real.parameters, f"{b.where}: {name} has no parameter {arg.arg!r}"
        p = real.parameters[arg.arg]
        assert p.kind == kind, f"{b.where}: {name}({arg.arg}) is {p.kind}, documented {kind}"
        if kind == P.POSITIONAL_OR_KEYWORD:
            assert positional[i].name == arg.arg, f"{b.where}: {arg.arg!r} is not at position {i}"
        if default is None:
            assert p.default is P.empty, f"{b.where}: {name}({arg.arg}) has a default"
        else:
            shown = ast.literal_eval(default)
            assert p.default is not P.empty and p.default == shown, (
                f"{b.where}: {name}({arg.arg}) default is {p.default!r}, documented {shown!r}"
            )


@pytest.mark.parametrize("block", _signature_blocks(), ids=lambda b: b.where)
def test_documented_signature_matches_the_code(block):
    _check_signature(block)


# ---------------------------------------------------------------------------------------------
# examples/


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_script_runs(script, tmp_path):
    _run([sys.executable, str(script)], tmp_path)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_example_config_loads(config):
    from lossgeometry.app.config import load_config

    cfg = load_config(config)
    assert cfg["data"]["name"] and cfg["model"]
