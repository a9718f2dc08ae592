"""Result dataclasses: frozen, typed, JSON round-trip, atomic saves.

Every measurement returns a subclass of :class:`Result`. Fields hold plain numbers, strings,
lists, dicts, NumPy arrays or torch tensors; :meth:`Result.to_dict` turns arrays into nested
lists (JSON), :meth:`Result.from_dict` turns them back into arrays using the field's type
annotation.

>>> import numpy as np
>>> import lossgeometry as lg
>>> rank = lg.numerical_rank(np.diag([3.0, 2.0, 1e-14]))     # a Result (here: a Rank)
>>> rank.rank, rank.size
(2, 3)
>>> d = rank.to_dict()                                        # JSON-able, arrays as lists
>>> d["__type__"], d["singular_values"]
('Rank', [3.0, 2.0, 1e-14])
>>> path = rank.save("rank.json")                             # written atomically
>>> again = lg.load_result("rank.json")                       # the class comes from __type__
>>> type(again).__name__, again.rank, np.array_equal(again.singular_values, rank.singular_values)
('Rank', 2, True)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

R = TypeVar("R", bound="Result")

_REGISTRY: dict[str, type[Result]] = {}


def to_jsonable(x: Any) -> Any:
    """Convert tensors, arrays, NumPy scalars, dataclasses and paths into JSON-able values.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return [to_jsonable(v) for v in x.tolist()] if x.ndim else to_jsonable(x.item())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Result):
        return x.to_dict()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, torch.dtype):
        return str(x).replace("torch.", "")
    return x


def _from_json_float(x: Any) -> Any:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    if isinstance(x, list):
        return [_from_json_float(v) for v in x]
    return x


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new, empty file beside ``path`` for writing: ``(descriptor, name)``.

    Created with mode ``0o666`` minus the process umask, as ``open(path, "w")`` would (so
    ``umask 022`` gives ``0644``, like the figures); ``tempfile.mkstemp`` would give ``0600``.
    ``O_EXCL`` and a random name make it private to this call.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - a 48-bit name taken
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename).

    A reader never sees a half-written file, and an interrupted run leaves the old file intact.
    The file's mode is ``0o666`` minus the umask, as for any file the process creates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` (converted by :func:`to_jsonable`) as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


@dataclasses.dataclass(frozen=True)
class Result:
    """Base class of all result dataclasses: ``to_dict``/``from_dict``, ``save``/``load``."""

    kind: ClassVar[str] = "result"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields, with ``"__type__"`` naming the class."""
        d = {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        d["__type__"] = type(self).__name__
        return d

    @classmethod
    def from_dict(cls: type[R], d: dict[str, Any]) -> R:
        """Rebuild from :meth:`to_dict` output (arrays come back as NumPy arrays)."""
        d = dict(d)
        d.pop("__type__", None)
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            val = _from_json_float(d[f.name])
            hint = str(hints.get(f.name, ""))
            if val is not None and ("ndarray" in hint or "Tensor" in hint):
                val = np.asarray(val, dtype=float)
            elif (
                isinstance(val, dict)
                and isinstance(hints.get(f.name), type)
                and issubclass(hints[f.name], Result)
            ):
                val = hints[f.name].from_dict(val)
            kwargs[f.name] = val
        return cls(**kwargs)

    def save(self, path: str | os.PathLike) -> Path:
        """Save as JSON (atomically)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        """Load a result saved with :meth:`save`.

        Raises:
            ValueError: the file is not JSON, not a JSON object, or has no ``__type__`` key
                (named, with what it holds).
            TypeError: it holds another result class.
        """
        d = _typed_json_object(path)
        name = d["__type__"]
        target = _REGISTRY.get(name, cls)
        if not issubclass(target, cls):
            raise TypeError(f"{path} holds a {name}, not a {cls.__name__}")
        return target.from_dict(d)  # type: ignore[return-value]


def _read_json_object(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in ``path``; an error names the file when it holds something else."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"no result file {path}: give the path of a file written by result.save(path)"
        )
    text = Path(path).read_text(encoding="utf-8")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not a saved lossgeometry result: it is not valid JSON ({e})"
        ) from None
    if not isinstance(d, dict):
        raise ValueError(
            f"{path} is not a saved lossgeometry result: it holds a JSON {type(d).__name__}, "
            "not an object with a '__type__' key (save results with result.save(path))"
        )
    return d


def _typed_json_object(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in ``path`` with the ``__type__`` key that :meth:`Result.save` writes.

    An error names the file and a few of its keys otherwise.
    """
    d = _read_json_object(path)
    if "__type__" not in d:
        keys = ", ".join(repr(k) for k in list(d)[:5]) + (", ..." if len(d) > 5 else "")
        raise ValueError(
            f"{path} is not a saved lossgeometry result: it has no '__type__' key (its keys: "
            f"{keys or 'none'}). Results are read from files written by result.save(path); a "
            "report's results.json is plain JSON: read it with json.load"
        )
    return d


def load_result(path: str | os.PathLike) -> Result:
    """Load any saved :class:`Result`; the class is read from the file's ``__type__``.

    Raises:
        ValueError: the file is not JSON, not an object, has no ``__type__`` key (e.g. a
            report's ``results.json``, which is a summary, not a Result) or names no known
            result class; the message names the file.
    """
    d = _typed_json_object(path)
    name = d["__type__"]
    if name not in _REGISTRY:
        raise ValueError(
            f"{path} does not hold a known lossgeometry result: type {name!r} is no result "
            "class of this version of lossgeometry"
        )
    return _REGISTRY[name].from_dict(d)
