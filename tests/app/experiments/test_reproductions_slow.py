"""Slow reproductions: every bundled experiment at its default size, end to end.

Skipped by `make test`; run with `make test-slow` (several minutes each on 2 cores).
"""

import json

import pytest

from lossgeometry.app.experiments import bundled_configs, run_experiment

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(bundled_configs()))
def test_bundled_experiment_default_size(name, tmp_path):
    summary = run_experiment(name, out=tmp_path, full=False, progress=False)
    assert isinstance(summary, dict) and summary
    results = json.loads((tmp_path / "results.json").read_text())
    assert results
    assert list(tmp_path.glob("*.png")) or list(tmp_path.rglob("*.png"))
