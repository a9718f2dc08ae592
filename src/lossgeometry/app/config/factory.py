"""A user's model factory, named in a config as ``"package.module:function"``.

Or as ``"path/to/file.py:function"``; ``--model`` on the command line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__ = ["load_factory"]


def load_factory(spec: str) -> Any:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"``.

    Raises:
        ValueError: the spec has no ``:``, the module does not import or lacks the function.
    """
    if ":" not in spec:
        raise ValueError(f"--model {spec!r}: expected 'module:function' or 'file.py:function'")
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
            f"--model {spec!r}: could not import {mod_name!r} ({type(e).__name__}: {e}). "
            "Check the module path (run from the folder that contains it) or give a .py file"
        ) from e
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"--model {spec!r}: {mod_name!r} has no callable {fn_name!r}")
    return fn
