import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from lossgeometry.results import Result, atomic_write_json, atomic_write_text, load_result


@dataclasses.dataclass(frozen=True)
class Demo(Result):
    values: np.ndarray
    name: str
    score: float
    extra: dict


def test_roundtrip(tmp_path):
    r = Demo(
        values=np.array([1.0, 2.5]), name="x", score=float("inf"), extra={"a": torch.tensor([1.0])}
    )
    path = r.save(tmp_path / "r.json")
    raw = json.loads(path.read_text())
    assert raw["score"] == "inf" and raw["__type__"] == "Demo"
    back = load_result(path)
    assert isinstance(back, Demo) and math.isinf(back.score)
    np.testing.assert_array_equal(back.values, r.values)
    assert Demo.load(path).extra == {"a": [1.0]}


def test_atomic_write_leaves_no_partial_file(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")

    class Boom(str):
        def __str__(self):
            raise RuntimeError

    with pytest.raises(TypeError):
        atomic_write_text(p, 123)  # type: ignore[arg-type]
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["f.txt"]


def test_load_unknown(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"__type__": "Nope"}')
    with pytest.raises(ValueError, match="known lossgeometry result"):
        load_result(p)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_respect_the_umask(tmp_path, umask):
    """results.json, index.html and caches get 0o666 minus the umask, as the figures do
    (mkstemp's 0600 made a report unreadable to the group with umask 022)."""
    import os

    old = os.umask(umask)
    try:
        text = atomic_write_text(tmp_path / "index.html", "<html></html>")
        js = atomic_write_json(tmp_path / "sub" / "results.json", {"a": 1})
        res = Demo(values=np.zeros(1), name="x", score=1.0, extra={}).save(tmp_path / "r.json")
        (tmp_path / "plain.txt").write_text("figure-like")
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    for p in (text, js, res, tmp_path / "plain.txt"):
        assert p.stat().st_mode & 0o777 == want, (p, oct(p.stat().st_mode))
    assert sorted(q.name for q in tmp_path.iterdir()) == [
        "index.html",
        "plain.txt",
        "r.json",
        "sub",
    ]  # no temporary file left behind


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"a": 1, "b": 2}', r"x\.json is not a saved lossgeometry result: it has no '__type__'"),
        ("[1, 2]", r"x\.json is not a saved lossgeometry result: it holds a JSON list"),
        ("nope", r"x\.json is not a saved lossgeometry result: it is not valid JSON"),
        ('{"__type__": "Nope"}', r"x\.json does not hold a known lossgeometry result: type 'Nope'"),
    ],
)
def test_load_result_on_a_file_that_is_not_a_result_says_so(tmp_path, text, match):
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_result(p)
    if "__type__" not in text:  # Demo.load reads the same way
        with pytest.raises(ValueError, match=match):
            Demo.load(p)


def test_load_result_names_a_report_results_json(tmp_path):
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"meta": {}, "config": {}, "sections": {}}))
    with pytest.raises(ValueError, match=r"its keys: 'meta', 'config', 'sections'.*json\.load"):
        load_result(p)


def test_trajectory_save_creates_missing_directories(tmp_path):
    import lossgeometry as lg

    torch.manual_seed(0)
    X, Y = torch.randn(6, 3), torch.randn(6, 2)
    pb = lg.Problem(torch.nn.Linear(3, 2), X, Y)
    run = lg.train(pb, "gd", steps=2, lr=1e-2)
    path = run.save(tmp_path / "a" / "b" / "run.json")
    back = lg.Trajectory.load(path)
    np.testing.assert_array_equal(back.loss, run.loss)
    assert torch.equal(back.w_final, run.w_final)


def test_load_result_of_a_missing_file_names_it(tmp_path):
    import pytest

    import lossgeometry as lg

    with pytest.raises(FileNotFoundError, match=r"no result file .*nope\.json: give the path"):
        lg.load_result(tmp_path / "nope.json")
