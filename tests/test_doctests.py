"""Docstring examples run: the ``>>>`` lines of every module of the package, as doctests.

Each module's examples run in a copy of the module's namespace (``doctest``'s default), with
``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``, from a temporary working directory. ``+SKIP`` is
allowed only in the packages listed in ``SKIP_ALLOWED``, which is empty now (the sweep, PL*
and α-β examples run on small sizes), so a skipped example anywhere fails here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lossgeometry

SKIP_ALLOWED: tuple[str, ...] = ()
"""Packages/modules whose docstring examples may still be ``+SKIP`` (none left: keep it so)."""

MUST_HAVE_EXAMPLES = (
    "lossgeometry",
    "lossgeometry.problem",
    "lossgeometry.results",
    "lossgeometry.options",
    "lossgeometry.data",
    "lossgeometry.data.loading",
    "lossgeometry.models.mlp",
)
"""Modules whose runnable examples are the front door of the API: they must have some."""

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = [lossgeometry.__name__]
    for info in pkgutil.walk_packages(lossgeometry.__path__, prefix="lossgeometry."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def _tests(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    # only the module's own objects (not names it re-exports from elsewhere)
    return [t for t in finder.find(module, name) if t.examples]


def _skipped(example: doctest.Example) -> bool:
    return example.options.get(doctest.SKIP, False)


def _allowed_to_skip(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in SKIP_ALLOWED)


def test_module_list_is_complete():
    assert {"lossgeometry.problem", "lossgeometry.data.loading"} <= set(MODULES)
    assert any(m.startswith("lossgeometry.app.") for m in MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    tests = _tests(name)
    if not _allowed_to_skip(name):
        skipped = [
            f"{t.name}: {e.source.strip()}" for t in tests for e in t.examples if _skipped(e)
        ]
        assert not skipped, f"`+SKIP` examples in {name} (make them run):\n" + "\n".join(skipped)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    failures: list[str] = []
    for t in tests:
        runner.run(t, out=failures.append)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", MUST_HAVE_EXAMPLES)
def test_front_door_modules_have_running_examples(name):
    examples = [e for t in _tests(name) for e in t.examples]
    assert examples, f"{name} has no docstring example"
    assert not any(_skipped(e) for e in examples)


def test_runner_reports_a_failing_example():
    parser = doctest.DocTestParser()
    t = parser.get_doctest(">>> 1 + 1\n3\n", {}, "bad", None, 0)
    failures: list[str] = []
    doctest.DocTestRunner(optionflags=FLAGS).run(t, out=failures.append)
    assert failures and "Expected:\n    3" in failures[0]
