"""Deprecated call styles, kept working for one release with a :class:`DeprecationWarning`.

The conventions (``docs/design.md``, Conventions): the point of a measurement is ``w``, the
first argument after ``problem``, and every argument after it is keyword-only. Functions whose
point was called ``w0`` (or whose later arguments could be passed by position) keep the old
call style for one release through :func:`deprecated_call_style`:

>>> @deprecated_call_style(renamed={"w0": "w"}, positional=("radius",))
... def certify(problem, w=None, *, radius=None):
...     return w, radius
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     certify("pb", w0=1, radius=2), certify("pb", 1, 2)
((1, 2), (1, 2))
>>> [type(c.message).__name__ for c in caught]
['DeprecationWarning', 'DeprecationWarning']
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["deprecated_call_style", "warn_deprecated"]


def warn_deprecated(message: str, *, stacklevel: int = 3) -> None:
    """Emit a :class:`DeprecationWarning` that points at the caller's caller (the user)."""
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)


def deprecated_call_style(
    *, renamed: Mapping[str, str] | None = None, positional: Sequence[str] = ()
) -> Callable[[F], F]:
    """Accept old keyword names and old positional arguments, with a DeprecationWarning.

    Args:
        renamed: old keyword name → new name (``{"w0": "w"}``). Passing the old name warns
            and forwards the value; passing both is a :class:`TypeError`.
        positional: the names, in their old order, of the arguments that used to come by
            position after the function's current positional parameters and are now
            keyword-only. Extra positional arguments are mapped onto them in order (with a
            warning); more extras than names, or a name also given by keyword, is a
            :class:`TypeError`.

    The wrapped function keeps its signature (``inspect.signature`` shows the new one).
    """
    renames = dict(renamed or {})
    legacy = tuple(positional)

    def decorate(fn: F) -> F:
        params = list(inspect.signature(fn).parameters.values())
        pos_names = [
            p.name
            for p in params
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        n_pos = len(pos_names)
        name = fn.__qualname__
        for old, new in renames.items():
            if new not in {p.name for p in params}:
                raise ValueError(f"{name} has no parameter {new!r} to rename {old!r} to")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_pos and legacy:
                extra = args[n_pos:]
                if len(extra) > len(legacy):
                    raise TypeError(
                        f"{name}() takes at most {n_pos + len(legacy)} positional arguments "
                        f"({len(args)} given)"
                    )
                names = legacy[: len(extra)]
                for key, val in zip(names, extra, strict=True):
                    if key in kwargs:
                        raise TypeError(f"{name}() got multiple values for argument {key!r}")
                    kwargs[key] = val
                args = args[:n_pos]
                warn_deprecated(
                    f"passing {', '.join(names)} by position to {name}() is deprecated and will "
                    f"stop working in the next release; pass "
                    f"{', '.join(f'{k}=...' for k in names)} by keyword"
                )
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                given_new = new in kwargs or (new in pos_names and len(args) > pos_names.index(new))
                if given_new:
                    raise TypeError(
                        f"{name}() got both {old!r} (the deprecated name) and {new!r}; "
                        f"pass only {new}="
                    )
                warn_deprecated(
                    f"{name}(): the argument {old!r} is now called {new!r}; {old}= will stop "
                    f"working in the next release"
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
