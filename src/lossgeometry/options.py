"""Options dataclasses: the one place each default lives, checked the same way everywhere.

Every study function takes a small frozen dataclass deriving :class:`Options` (for example
``KernelChangeOptions``); the dataclass's field defaults are the *only* copies of the
defaults. The CLI, the report, the experiments and the sweeps build the dataclass from their
own input (keyword arguments, a TOML table) with :meth:`Options.from_mapping`, which gives one
kind of error for every front end:

* an unknown key names the key, where it was, and the closest valid name
  (``[report.curvature] tpo: unknown option; did you mean 'top'?``);
* a value of the wrong type names the key and the type it needs (``steps = "four"``,
  ``seed = 1.7`` and ``steps = true`` are errors, never silently converted);
* a ``Literal[...]`` field names its choices;
* a field renamed by :func:`renamed_options` is hinted by its new name
  (``[report.kernel] method: unknown option; did you mean 'solver'? ...``), and the
  constructor still takes the former name for one release, with a ``DeprecationWarning``.

Conversions are only the lossless ones a TOML file needs: an ``int`` where a ``float`` is
wanted, a list where a tuple is wanted. :func:`check_value` applies the same check to one
value against any annotation (the application uses it for tables whose keys come from a
function's signature, such as a data set loader's options).

>>> import dataclasses
>>> from lossgeometry.options import Options
>>> @dataclasses.dataclass(frozen=True)
... class WalkOptions(Options):
...     steps: int = 10
...     step_size: float = 0.01
...     radii: tuple[float, ...] = (0.1, 0.01)
>>> WalkOptions.from_mapping({"steps": 4, "step_size": 1, "radii": [1, 0.5]})
WalkOptions(steps=4, step_size=1.0, radii=(1.0, 0.5))
>>> WalkOptions.from_mapping({"stpes": 4}, where="report.walk")
Traceback (most recent call last):
    ...
lossgeometry.options.OptionsError: [report.walk] stpes: unknown option; did you mean 'steps'? ...
>>> WalkOptions(steps=1.5)
Traceback (most recent call last):
    ...
lossgeometry.options.OptionsError: steps = 1.5: expected an integer
>>> WalkOptions().replace(steps=3).to_dict()
{'steps': 3, 'step_size': 0.01, 'radii': [0.1, 0.01]}
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from lossgeometry._compat import deprecated_call_style

__all__ = [
    "Options",
    "OptionsError",
    "check_value",
    "closest",
    "located",
    "renamed_options",
    "unknown_key_message",
]

T = TypeVar("T", bound="Options")


class OptionsError(ValueError):
    """A bad option: unknown key, wrong type or value. The message names the key."""


def closest(name: str, valid: typing.Iterable[str]) -> str | None:
    """The valid name closest to ``name`` (difflib ratio ≥ 0.6), or ``None``."""
    m = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return m[0] if m else None


def unknown_key_message(
    key: str,
    valid: typing.Iterable[str],
    where: str = "",
    what: str = "option",
    renamed: Mapping[str, str] | None = None,
) -> str:
    """``"[where] key: unknown option; did you mean 'x'? Valid options: a, b, c"``.

    ``what`` names the kind of key (``"option of data set 'digits'"``, ``"report section"``);
    for a kind other than an option the list reads ``Valid names: ...``. ``renamed`` maps
    former names to current ones: a former name is hinted by its new name (not by spelling).
    """
    valid = sorted(valid)
    label = "Valid options" if what.startswith("option") else "Valid names"
    loc = f"[{where}] " if where else ""
    hint = (renamed or {}).get(key) or closest(key, valid)
    did = f"; did you mean {hint!r}?" if hint else "."
    return f"{loc}{key}: unknown {what}{did} {label}: {', '.join(valid) or '(none)'}"


def located(message: str, where: str) -> str:
    """``message`` placed under the table ``where``.

    ``[where] msg``, or ``[where.sub] msg`` when the message already names a table ``[sub]``.
    """
    if not where:
        return message
    if message.startswith("[") and "] " in message:
        inner, _, rest = message[1:].partition("] ")
        return f"[{where}.{inner}] {rest}"
    return f"[{where}] {message}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "none"
    if origin is not None:
        return getattr(origin, "__name__", str(tp))
    return getattr(tp, "__name__", str(tp))


def check_value(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against a type ``annotation``; the error names ``key``.

    Returns the value after the lossless conversions (``int`` → ``float``, list → tuple).
    Annotations it cannot check (callables, arbitrary generics) accept any value.

    Raises:
        OptionsError: ``"key = value: expected ..."``.
    """
    return _convert(value, annotation, key)


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the annotation ``tp`` (lossless conversions only)."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _convert(value, arg, key)
            except OptionsError:
                continue
        raise OptionsError(f"{key} = {value!r}: expected {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        ok = any(c is value for c in choices) if isinstance(value, bool) else value in choices
        if ok and not any(isinstance(c, bool) for c in choices if c == value and c is not value):
            return value
        raise OptionsError(f"{key} = {value!r}: choose one of {', '.join(map(repr, choices))}")
    if tp is type(None):
        if value is None:
            return None
        raise OptionsError(f"{key} = {value!r}: expected none")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise OptionsError(f"{key} = {value!r}: expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise OptionsError(f"{key} = {value!r}: expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise OptionsError(f"{key} = {value!r}: expected a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise OptionsError(f"{key} = {value!r}: expected a string")
    if origin is Sequence:  # a read-only sequence: items checked, kept as a tuple
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise OptionsError(f"{key} = {value!r}: expected a list")
        args = get_args(tp)
        return tuple(
            _convert(v, args[0], f"{key}[{i}]") if args else v for i, v in enumerate(value)
        )
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise OptionsError(f"{key} = {value!r}: expected a list")
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        elif origin is tuple and args:
            if len(args) != len(value):
                raise OptionsError(f"{key} = {value!r}: expected {len(args)} entries")
            items = tuple(
                _convert(v, a, f"{key}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        else:
            items = tuple(
                _convert(v, args[0], f"{key}[{i}]") if args else v for i, v in enumerate(value)
            )
        return items if origin is tuple else list(items)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        raise OptionsError(f"{key} = {value!r}: expected a table")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and issubclass(tp, Options):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return tp.from_mapping(value, where=key)
        raise OptionsError(f"{key} = {value!r}: expected a table")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise OptionsError(f"{key} = {value!r}: expected {_type_name(tp)}")
    return value


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of the options dataclasses: typed fields, one default each, checked on build.

    Subclasses are ``@dataclasses.dataclass(frozen=True)`` with annotated, defaulted fields
    and may add a ``check()`` method for constraints between fields (raise
    :class:`OptionsError`). Construction by keyword (``KernelChangeOptions(tol=1e-8)``) runs
    the same type checks as :meth:`from_mapping`.
    """

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _convert(value, hints[f.name], f.name))
        self.check()

    former_names: ClassVar[Mapping[str, str]] = {}
    """Former option names → current ones (set by :func:`renamed_options`)."""

    def check(self) -> None:
        """Constraints between fields; override to add them (raise :class:`OptionsError`)."""

    @classmethod
    def field_names(cls) -> list[str]:
        """The option names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
        """Build from a mapping (a TOML table, CLI options); errors name ``where.key``.

        An error from a nested options table keeps its own location under ``where``:
        ``[model.train] stpes: ...`` for the table ``train`` of a table read at ``model``.
        """
        if data is not None and not isinstance(data, Mapping):
            loc = f"[{where}] " if where else ""
            raise OptionsError(f"{loc}expected a table, got {data!r}")
        data = dict(data or {})
        names = cls.field_names()
        for key in data:
            if key not in names:
                raise OptionsError(unknown_key_message(key, names, where, renamed=cls.former_names))
        try:
            return cls(**data)
        except OptionsError as e:
            raise OptionsError(located(str(e), where)) from None

    def replace(self: T, **changes: Any) -> T:
        """A copy with some options changed (checked like the constructor)."""
        names = self.field_names()
        for key in changes:
            if key not in names:
                raise OptionsError(
                    unknown_key_message(key, names, type(self).__name__, renamed=self.former_names)
                )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples as lists), for results files and cache keys."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Options):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


def renamed_options(renamed: Mapping[str, str]) -> Callable[[type[T]], type[T]]:
    """Class decorator (above ``@dataclasses.dataclass``) for options that were renamed.

    The constructor accepts each former name for one release, with a ``DeprecationWarning``
    (:func:`lossgeometry._compat.deprecated_call_style`); :meth:`Options.from_mapping` and
    :meth:`Options.replace` reject it, with the new name as the hint (a TOML file or CLI
    option must use the current name).

    >>> import warnings
    >>> @renamed_options({"method": "solver"})
    ... @dataclasses.dataclass(frozen=True)
    ... class SolveOptions(Options):
    ...     solver: str = "auto"
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     SolveOptions(method="dense")
    SolveOptions(solver='dense')
    >>> type(caught[0].message).__name__
    'DeprecationWarning'
    >>> SolveOptions.from_mapping({"method": "dense"}, where="solve")
    Traceback (most recent call last):
        ...
    lossgeometry.options.OptionsError: [solve] method: unknown option; did you mean 'solver'? ...
    """
    mapping = dict(renamed)

    def decorate(cls: type[T]) -> type[T]:
        fields = set(cls.field_names())
        for old, new in mapping.items():
            if new not in fields or old in fields:
                raise ValueError(f"{cls.__name__}: cannot rename option {old!r} to {new!r}")
        cls.__init__ = deprecated_call_style(renamed=mapping)(cls.__init__)  # type: ignore[method-assign]
        cls.former_names = {**cls.former_names, **mapping}
        return cls

    return decorate
