"""What every config table shares: the typed-table base, the merge rule, the dtype table.

A config table is a frozen :class:`~lossgeometry.options.Options` dataclass (typed fields,
closest-key errors) that also reads like the TOML table it came from: ``cfg["train"]["lr"]``,
``cfg.get("seed")`` and ``dict(cfg["model"])`` work as they did when configs were plain dicts,
so code that only reads a config needs no change. The view is read-only: assigning an item
raises ``TypeError``, and containers (lists, tables of free keys) come back as copies. Build a
changed config with :func:`merge` on ``to_dict()`` and parse it again.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal

import torch

from lossgeometry.options import Options, OptionsError

__all__ = ["DTYPES", "ConfigTable", "KeyKind", "merge", "resolve_device", "resolve_dtype"]

KeyKind = Literal["value", "table", "free"]
"""What a key of a config table holds: one value, a typed table (a :class:`ConfigTable`), or
a table of free keys (``[model.kwargs]``, ``[train.kwargs]``, ``[report.NAME]``) that the
config passes on without knowing its keys."""


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """The one merge rule of configs: tables merge key by key, any other value replaces.

    Neither argument is modified; the result shares no containers with them.
    """
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(dict(v) if isinstance(v, Mapping) else v)
    return out


DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
"""The dtype names a config may use (the one table: analyze, experiments and sweeps)."""


def resolve_dtype(name: Any, key: str = "dtype") -> torch.dtype:
    """The torch dtype a config names; a clear error names ``key`` and the choices.

    Raises:
        OptionsError: (a ``ValueError``) ``"dtype must be one of ['float32', 'float64'], got
            'float16'"``.
    """
    if isinstance(name, str) and name in DTYPES:
        return DTYPES[name]
    raise OptionsError(f"{key} must be one of {sorted(DTYPES)}, got {name!r}")


def resolve_device(name: Any, key: str = "device") -> torch.device:
    """The torch device a config names (``"cpu"``, ``"cuda"``, ``"cuda:1"``); checked.

    ``"cuda"`` without an index is the current CUDA device (under torchrun, GPU
    ``LOCAL_RANK``: :func:`lossgeometry.distributed.init` makes it current). CUDA itself is
    checked when the problem is built (a config may be read on a machine without a GPU).

    Raises:
        OptionsError: (a ``ValueError``) ``"device must be 'cpu' or 'cuda' (or 'cuda:N'),
            got 'gpu'"``.
    """
    try:
        dev = torch.device(name) if isinstance(name, str) else None
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise OptionsError(f"{key} must be 'cpu' or 'cuda' (or 'cuda:N'), got {name!r}")
    return dev


def _plain(value: Any) -> Any:
    """A deep, JSON-shaped copy: tables become dicts, tuples become lists."""
    if isinstance(value, ConfigTable):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


@dataclasses.dataclass(frozen=True)
class ConfigTable(Options, Mapping[str, Any]):
    """A typed config table that reads like its TOML table (a read-only mapping).

    Subclasses are frozen dataclasses; by default the table's keys are its fields, and an
    option left at ``None`` is "not set" (absent from the mapping and from :meth:`to_dict`,
    so the config hash of a file does not depend on options it does not use). Tables whose
    keys are not fields (``[data]``, ``[model]``, ``[report]``) override :meth:`_view` and
    :meth:`schema_keys`.
    """

    def _view(self) -> dict[str, Any]:
        """The table as the file has it: key -> value, nested tables as :class:`ConfigTable`."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out

    def __getitem__(self, key: str) -> Any:
        value = self._view()[key]
        return value if isinstance(value, ConfigTable) else _plain(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def to_dict(self) -> dict[str, Any]:
        """The table as plain JSON-able dicts and lists (what ``config.json`` holds)."""
        return {k: _plain(v) for k, v in self._view().items()}

    free_tables: ClassVar[tuple[str, ...]] = ()
    """Fields that hold a table of free keys (``"kwargs"``)."""

    def schema_keys(self) -> dict[str, KeyKind]:
        """The keys this table accepts and what each holds (sweeps check grid keys here)."""
        out: dict[str, KeyKind] = {}
        for f in dataclasses.fields(self):
            if f.name in self.free_tables:
                out[f.name] = "free"
            elif isinstance(getattr(self, f.name), ConfigTable):
                out[f.name] = "table"
            else:
                out[f.name] = "value"
        return out
