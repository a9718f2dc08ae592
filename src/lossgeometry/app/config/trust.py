"""A config is data, not code: what a TOML file may name, and the one way past that rule.

A config file someone sent you must not be able to run code on your machine. Every string of
a config that selects something to call is therefore looked up in an allow-list, never
imported:

======================  ==========================================================
``[model] name``        ``lossgeometry.models.available()`` (the model registry)
``[data] name``         ``lossgeometry.data.available()`` (local files as ``mnist:DIR``)
``[loss] name``         ``"mse"`` or ``"cross_entropy"``
``[train] optimizer``   ``lossgeometry.optim.registry.optimizer_names()``
``[report] sections``   the registered report sections
======================  ==========================================================

The one key that names code to import is ``[model] factory = "module:function"`` (or
``"file.py:function"``). A factory may come from the command line (``--model file.py:make``)
or from Python (``load_config(overrides=...)``, ``build_problem(dict)``): you typed it. From a
file it is refused unless you say you trust the file: ``--trust-config`` on the command line,
``load_config(path, trust=True)`` in Python (as HuggingFace's ``trust_remote_code``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossgeometry.options import OptionsError

__all__ = ["CODE_KEYS", "UntrustedConfigError", "check_file_names_no_code"]

CODE_KEYS: tuple[tuple[str, str], ...] = (("model", "factory"),)
"""The ``(table, key)`` pairs of a config whose value is imported and run."""


class UntrustedConfigError(OptionsError):
    """A config file names code to run (``[model] factory``) and was not marked as trusted."""


def _named_code(table: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The ``(table, key, value)`` of ``table`` (a config's tables) that name code."""
    out = []
    for tname, key in CODE_KEYS:
        sub = table.get(tname)
        if isinstance(sub, Mapping) and key in sub:
            out.append((tname, key, sub[key]))
    return out


def check_file_names_no_code(
    effective: Mapping[str, Any], overrides: Mapping[str, Any] | None, path: str | Path
) -> None:
    """Refuse a config read from ``path`` whose code keys came from the file.

    ``effective`` is the merged config (defaults, then the file, then ``overrides``). The
    built-in defaults name no code, so a key of :data:`CODE_KEYS` set there came from the file
    unless ``overrides`` (the command line, or the Python caller) set it; a file's factory
    that ``overrides`` replace (``--model``, or another ``[model] name``) is never imported
    and is no reason to refuse.

    Raises:
        UntrustedConfigError: naming the file, the key and the three ways forward.
    """
    from_caller = {(t, k) for t, k, _ in _named_code(overrides or {})}
    for tname, key, value in _named_code(effective):
        if (tname, key) in from_caller:
            continue
        raise UntrustedConfigError(
            f"{path}: [{tname}] {key} = {value!r} names code to import and run, and a config "
            "file is data: it may name a built-in model ([model] name = 'mlp'; see "
            "lossgeometry.models.available()), not code. If you wrote this file or trust its "
            "author, pass --trust-config (load_config(path, trust=True) in Python); or give "
            "the factory on the command line: --model FILE.py:FUNCTION."
        )
