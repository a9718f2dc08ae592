"""A report is built in a staging directory and swapped in whole: never a mixed page.

``analyze OUT`` writes everything of the run into ``OUT/.staging/`` (the same layout as the
report: ``sections/``, ``figures/``, ``trajectory.json``, ``state.json``, and after every
finished section a partial ``index.html`` marked "in progress" that shows only this run's
sections). The report in ``OUT`` itself stays the previous run's, complete and untouched,
until the run ends; then :meth:`Staging.publish` takes the old page down first
(``index.html``, ``results.json``), replaces the old run's files by the new ones and puts
the new ``index.html`` in place last. A reader of ``OUT`` sees the old page, briefly no page,
or the new one; never numbers, figures and a config of two runs on one page.

Finished work is found by key (:mod:`lossgeometry.app.outdir.keys`): the training run by
``state.json → trajectory_key``, each section by ``sections/NAME.json → key``, looked up
first in the staging directory (an interrupted run of the same config resumes there), then in
the published report (a rerun reuses what did not change). A section is reused only with
every figure its page fragment shows, from the same directory; reused files are copied into
the staging directory, so the published report is never written while a run goes on.
"""

from __future__ import annotations

import dataclasses
import html as _html
import os
import re
import shutil
from pathlib import Path
from typing import Any

from lossgeometry.app.outdir import corrupt, read_cached_json
from lossgeometry.results import atomic_write_json
from lossgeometry.train import Trajectory

__all__ = ["STAGING", "ReportKeys", "Staging", "figures_of"]

STAGING = ".staging"
"""The staging directory's name inside the output directory."""
_TRAJECTORY = ("trajectory.json", "trajectory.json.pt")
_PUBLISH_ORDER = ("figures", "sections", *reversed(_TRAJECTORY), "state.json", "results.json")
"""What moves from the staging directory into the report, in this order; ``index.html``
goes last."""
_FIGURE = re.compile(r'src="figures/([^"]+)"')


def figures_of(fragment: str) -> list[str]:
    """The figure files (under ``figures/``) an HTML fragment shows."""
    return sorted({_html.unescape(m) for m in _FIGURE.findall(fragment)})


@dataclasses.dataclass(frozen=True)
class ReportKeys:
    """The cache keys of one run: its training run and each enabled section."""

    trajectory: str
    sections: dict[str, str]


def _record(path: Path) -> dict[str, Any] | None:
    rec = read_cached_json(path)
    if rec is not None and not isinstance(rec, dict):
        raise corrupt(path, TypeError("not a JSON object"))
    return rec


class Staging:
    """The staging directory of one run of ``analyze`` in ``out`` (see the module doc).

    With ``resume=False`` it starts empty and nothing earlier is reused; otherwise it keeps
    what an interrupted run of the same keys finished and drops the rest.
    """

    def __init__(self, out: Path, keys: ReportKeys, *, resume: bool) -> None:
        self.out = out
        self.dir = out / STAGING
        self.keys = keys
        if not resume:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.sources = [self.dir, out] if resume else []
        (self.dir / "sections").mkdir(parents=True, exist_ok=True)
        self._prune()

    @property
    def index(self) -> Path:
        """The partial page of the run (``.staging/index.html``)."""
        return self.dir / "index.html"

    def _state(self, where: Path) -> dict[str, Any]:
        path = where / "state.json"
        state = _record(path)
        return state or {}

    def _prune(self) -> None:
        """Keep in the staging directory only what this run may reuse."""
        state = self._state(self.dir)
        traj_ok = state.get("trajectory_key") == self.keys.trajectory
        if not traj_ok:
            for f in _TRAJECTORY:
                (self.dir / f).unlink(missing_ok=True)
        kept: set[str] = set()
        for path in (self.dir / "sections").glob("*.json"):
            key = self.keys.sections.get(path.stem)
            rec = _record(path) if key is not None else None
            if rec is not None and rec.get("key") == key and rec.get("error") is None:
                kept.update(rec.get("figures", []))
            else:
                path.unlink()
        figures = self.dir / "figures"
        if figures.is_dir():
            for f in figures.iterdir():
                if f.name not in kept:
                    f.unlink()
        for f in ("index.html", "results.json"):
            (self.dir / f).unlink(missing_ok=True)
        self.write_state(self.keys.trajectory if traj_ok else None, status="in progress")

    def write_state(self, trajectory_key: str | None, status: str, **extra: Any) -> None:
        """``state.json`` of the staging directory: the keys of what it holds."""
        atomic_write_json(
            self.dir / "state.json",
            {
                "status": status,
                "trajectory_key": trajectory_key,
                "sections": self.keys.sections,
                **extra,
            },
        )

    def trajectory(self) -> Trajectory | None:
        """The training run of this key, from the staging directory or the report."""
        for src in self.sources:
            path = src / "trajectory.json"
            if self._state(src).get("trajectory_key") != self.keys.trajectory:
                continue
            if not path.is_file():
                continue
            try:
                traj = Trajectory.load(path)
            except Exception as e:  # any unreadable file: JSON, fields, tensors
                raise corrupt(path, e) from None
            if src != self.dir:
                for f in _TRAJECTORY:
                    if (src / f).exists():
                        shutil.copy2(src / f, self.dir / f)
                self.write_state(self.keys.trajectory, status="in progress")
            return traj
        return None

    def save_trajectory(self, traj: Trajectory) -> None:
        """Save a new training run (the state says whose it is only once it is saved)."""
        traj.save(self.dir / "trajectory.json")
        self.write_state(self.keys.trajectory, status="in progress")

    def section(self, name: str) -> dict[str, Any] | None:
        """The finished record of section ``name`` with this run's key, or None."""
        key = self.keys.sections[name]
        for src in self.sources:
            path = src / "sections" / f"{name}.json"
            rec = _record(path)
            if rec is None or rec.get("key") != key or rec.get("error") is not None:
                continue
            figs = rec.get("figures", [])
            if not all((src / "figures" / f).is_file() for f in figs):
                continue
            if src != self.dir:
                (self.dir / "figures").mkdir(exist_ok=True)
                for f in figs:
                    shutil.copy2(src / "figures" / f, self.dir / "figures" / f)
                atomic_write_json(self.dir / "sections" / f"{name}.json", rec)
            return rec
        return None

    def save_section(self, name: str, rec: dict[str, Any]) -> dict[str, Any]:
        """Store a section's record with its key and the figures it shows."""
        rec = {**rec, "key": self.keys.sections[name], "figures": figures_of(rec["html"])}
        atomic_write_json(self.dir / "sections" / f"{name}.json", rec)
        return rec

    def publish(self, records: dict[str, dict[str, Any]]) -> Path:
        """Swap the finished report in: the old page goes first, the new ``index.html`` last.

        Figures no record shows (a failed section's half) are left out.
        """
        shown = {f for rec in records.values() for f in rec.get("figures", [])}
        figures = self.dir / "figures"
        if figures.is_dir():
            for f in figures.iterdir():
                if f.name not in shown:
                    f.unlink()
        out = self.out
        for f in ("index.html", "results.json", "state.json", *_TRAJECTORY):
            (out / f).unlink(missing_ok=True)
        for d in ("sections", "figures"):
            shutil.rmtree(out / d, ignore_errors=True)
        for name in (*_PUBLISH_ORDER, "index.html"):
            if (self.dir / name).exists():
                os.replace(self.dir / name, out / name)
        shutil.rmtree(self.dir, ignore_errors=True)
        return out / "index.html"
