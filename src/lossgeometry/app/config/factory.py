"""A user's model factory: ``"package.module:function"`` or ``"path/to/file.py:function"``.

It comes from ``--model`` on the command line, from Python, or from a config file the user
trusts (``--trust-config``; see :mod:`~lossgeometry.app.config.trust`). Loading it imports
and runs code: :func:`load_factory` finds it, :func:`call_factory` calls it and names it in
any error it raises.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ModelFactoryError", "call_factory", "load_factory"]


class ModelFactoryError(ValueError):
    """A user's model factory raised: the message names the factory and shows its error."""


def load_factory(spec: str) -> Any:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"``.

    Raises:
        ValueError: the spec has no ``:``, the module does not import or lacks the function.
    """
    if ":" not in spec:
        raise ValueError(
            f"model factory {spec!r}: expected 'module:function' or 'file.py:function'"
        )
    mod_name, _, fn_name = spec.rpartition(":")
    try:
        if mod_name.endswith(".py") or "/" in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            modspec = importlib.util.spec_from_file_location(path.stem, path)
            assert modspec is not None and modspec.loader is not None
            module = importlib.util.module_from_spec(modspec)
            modspec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(mod_name)
    except Exception as e:  # any import-time failure of user code
        raise ValueError(
            f"model factory {spec!r}: could not import {mod_name!r} ({type(e).__name__}: {e}). "
            "Check the module path (run from the folder that contains it) or give a .py file"
        ) from e
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"model factory {spec!r}: {mod_name!r} has no callable {fn_name!r}")
    return fn


def _where(e: BaseException, fn: Callable[..., Any]) -> str:
    """``" (at make.py, line 3)"``: the deepest frame of ``e`` in the factory's own file."""
    code = getattr(fn, "__code__", None)
    frames = traceback.extract_tb(e.__traceback__)
    if code is not None:
        own = [f for f in frames if f.filename == code.co_filename]
        frames = own or frames
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}, line {f.lineno})"


def call_factory(spec: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``fn(**kwargs)``; an exception of the factory becomes a :class:`ModelFactoryError`.

    Raises:
        ModelFactoryError: ``model factory 'fm.py:make' raised RuntimeError: boom (at fm.py,
            line 3); kwargs: {'d_in': 64, ...}``, chained to the factory's own exception (its
            traceback is kept for Python callers).
    """
    try:
        return fn(**kwargs)
    except Exception as e:
        raise ModelFactoryError(
            f"model factory {spec!r} raised {type(e).__name__}: {e}{_where(e, fn)}; it was "
            f"called with {kwargs!r} ([model.kwargs] plus d_in, d_out, seed where it takes them)"
        ) from e
