"""How a command turns its typer options into a study's options dataclass.

Typer options of a study default to ``None`` ("not given"); :func:`study_options` drops those
and builds the dataclass, so the dataclass's field default is the only copy of each default.
Help texts quote that default with :func:`with_default` (read from the field, never a second
literal).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from lossgeometry.options import Options, OptionsError

O = TypeVar("O", bound=Options)

__all__ = ["default_of", "refuse_former_flag", "study_options", "with_default"]


def default_of(cls: type[Options], name: str) -> Any:
    """The default of the field ``name`` of the options dataclass ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is dataclasses.MISSING:
                raise KeyError(f"{cls.__name__}.{name} has no default")
            return f.default
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def with_default(text: str, cls: type[Options], name: str) -> str:
    """``text`` followed by ``(default: D)`` with ``D`` the field's default."""
    d = default_of(cls, name)
    if d is None:
        shown = "none"
    elif isinstance(d, bool):
        shown = str(d).lower()
    elif isinstance(d, tuple):
        shown = ", ".join(map(str, d))
    else:
        shown = str(d)
    return f"{text} (default: {shown})"


def study_options(cls: type[O], where: str = "", **given: Any) -> O:
    """``cls`` built from the options that were given (``None`` means: the default)."""
    return cls.from_mapping({k: v for k, v in given.items() if v is not None}, where=where)


def refuse_former_flag(value: Any, old: str, new: str) -> None:
    """Refuse a renamed flag (kept as a hidden option for this message) when it was given.

    ``--method`` became ``--solver`` (one word per meaning, ``docs/design.md``, Conventions);
    a command line with the old flag is an error that names the new one, like a TOML key.
    """
    if value is not None:
        raise OptionsError(f"{old} is now called {new}: pass {new} {value}")
