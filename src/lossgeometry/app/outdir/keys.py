"""Cache keys: everything a cached result depends on, hashed.

A cached result (a report section, a training run, an experiment's grid point, a sweep run)
is reused only when its key is the one the current run would compute. A key covers:

* the options of the thing itself and the whole config it runs under (the caller passes
  them: a section's ``[report.NAME]`` table and the problem config, a point's settings);
* what that config only *names*: the source of a user model factory (``--model fm.py:make``
  hashes ``fm.py``; ``package.module:function`` hashes the module's source file, found
  without importing it) and local data files (``"mnist:DIR"``: the relative path, size and
  modification time of every file under ``DIR``);
* the versions of lossgeometry and torch (:func:`versions`).

Only the factory's own module is hashed, not the modules it imports: an edited helper module
of a factory is not seen (``--fresh`` recomputes). Data sets that need no files (``digits``,
``mnist1d``, the synthetic ones) are determined by their options and the versions.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossgeometry.results import to_jsonable

__all__ = ["data_fingerprint", "digest", "factory_fingerprint", "inputs", "versions"]


def digest(obj: Any) -> str:
    """The first 16 hex digits of the SHA-256 of ``obj`` as JSON with sorted keys."""
    blob = json.dumps(to_jsonable(obj), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    """The versions a cached number depends on: ``{"lossgeometry": ..., "torch": ...}``."""
    import torch

    from lossgeometry._version import __version__

    return {"lossgeometry": __version__, "torch": torch.__version__}


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _module_file(name: str) -> str | None:
    """The source file of module ``name``, found the way ``import`` would, without importing.

    A module already imported answers with its ``__file__``; otherwise each package along
    the dotted name is looked up on ``sys.path`` (and the working directory, as
    :func:`~lossgeometry.app.config.load_factory` adds it) by the path finder, which reads
    directories but runs no code.
    """
    parts = name.split(".")
    search: list[str] | None = [*sys.path, str(Path.cwd())]
    origin: str | None = None
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        mod = sys.modules.get(full)
        if mod is not None:
            origin = getattr(mod, "__file__", None)
            search = list(getattr(mod, "__path__", []) or [])
            continue
        spec = importlib.machinery.PathFinder.find_spec(full, search)
        if spec is None:
            return None
        origin = spec.origin if spec.has_location else None
        search = list(spec.submodule_search_locations or [])
    return origin


def factory_fingerprint(spec: str) -> dict[str, Any]:
    """What a user model factory's result depends on besides its keyword arguments.

    ``{"spec": spec, "file": PATH, "sha256": HEX}`` with the SHA-256 of the factory's source
    file (``"file.py:fn"``: that file; ``"package.module:fn"``: the module's file). A file
    that cannot be found gets ``"sha256": None`` (building the model fails with its own
    error).
    """
    mod_name = spec.rpartition(":")[0]
    if mod_name.endswith(".py") or "/" in mod_name or os.sep in mod_name:
        path: str | None = mod_name
    else:
        try:
            path = _module_file(mod_name)
        except (ImportError, ValueError, OSError):
            path = None
    if path is None or not Path(path).is_file():
        return {"spec": spec, "file": path, "sha256": None}
    p = Path(path).resolve()
    return {"spec": spec, "file": str(p), "sha256": _file_sha256(p)}


def data_fingerprint(name: str) -> dict[str, Any] | None:
    """The local files a data set name reads, as ``{"dir": DIR, "files": HASH}`` (or None).

    Only names of the form ``"dataset:DIR"`` read files; ``HASH`` is the :func:`digest` of
    the sorted ``(relative path, size, mtime in ns)`` of every file under ``DIR`` (hidden
    files and folders skipped). A missing directory gives ``"files": None``.
    """
    if not isinstance(name, str) or ":" not in name:
        return None
    root = Path(name.partition(":")[2]).expanduser()
    if not root.is_dir():
        return {"dir": str(root), "files": None}
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            p = Path(folder) / f
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return {"dir": str(root.resolve()), "files": digest(entries)}


def _data_name(config: Mapping[str, Any]) -> str | None:
    data = config.get("data")
    if isinstance(data, str):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("name"), str):
        return data["name"]
    return None


def inputs(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a config's results depend on outside the config itself (see the module doc).

    ``config`` is an ``analyze`` config or an experiment's (a mapping; an ``AnalyzeConfig``
    reads as one): its ``[model] factory`` and its data set name (``data = "NAME"`` or
    ``[data] name = "NAME"``) are looked at. Returns ``{"versions": ..., "factory": ...,
    "data": ...}`` (the last two only when the config names a factory or local files).
    """
    out: dict[str, Any] = {"versions": versions()}
    model = config.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("factory"), str):
        out["factory"] = factory_fingerprint(model["factory"])
    name = _data_name(config)
    files = data_fingerprint(name) if name is not None else None
    if files is not None:
        out["data"] = files
    return out
