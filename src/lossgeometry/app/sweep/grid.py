"""The configs and grids of a sweep: the base config, grid keys checked, points named.

``check_grid`` checks every dotted grid key before anything runs: for ``job="analyze"``
against the typed config (:mod:`lossgeometry.app.config`: the schema's keys, the data set's
loader options, the built-in model's builder options), for ``job="run"`` against the keys
the experiment's TOML sets. ``expand_grid`` builds the cartesian product, one
:class:`GridPoint` per run, named from its values (``width=64,seed=0``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossgeometry.app.sweep.result import short_labels
from lossgeometry.options import closest
from lossgeometry.results import to_jsonable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "GridPoint",
    "check_grid",
    "config_hash",
    "expand_grid",
    "load_base_config",
    "run_name",
]

_NAME_MAX = 120
_SAFE = re.compile(r"[^A-Za-z0-9._+\-=,]")


def load_base_config(config: str | os.PathLike | Mapping[str, Any] | None, job: str) -> dict:
    """The config every run of a sweep starts from, as a plain dict (what ``config.json`` holds).

    Args:
        config: for ``job="analyze"``: a TOML path, a dict (same keys as the TOML) or
            ``None`` (the built-in default); missing keys take the defaults, as in
            ``lossgeometry analyze -c``. For ``job="run"``: a TOML path, a bundled experiment
            name (``lossgeometry run --list``) or a dict with an ``experiment`` key.
        job: ``"analyze"`` or ``"run"``.

    Raises:
        FileNotFoundError: no such file (or bundled experiment).
        ValueError: bad TOML, an unknown key or bad value (analyze: the message names the
            table, the key and the closest valid one), unknown experiment.
    """
    if job == "analyze":
        from lossgeometry.app.config import load_config
        from lossgeometry.app.experiments.registry import bundled_configs

        if isinstance(config, Mapping):
            return load_config(None, config).to_dict()
        if config is not None and not Path(config).is_file() and str(config) in bundled_configs():
            raise ValueError(
                f"{str(config)!r} is a bundled experiment, not an analyze config: use job='run' "
                "(--job run)"
            )
        return load_config(config).to_dict()
    if config is None:
        from lossgeometry.app.experiments.registry import bundled_configs

        raise ValueError(
            "job='run' needs an experiment: a TOML path or a bundled name "
            f"({', '.join(bundled_configs())})"
        )
    if isinstance(config, Mapping):
        cfg = copy.deepcopy(dict(config))
        where = "the config dict"
    else:
        path = _experiment_path(config)
        try:
            cfg = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path} is not valid TOML: {e}") from None
        where = str(path)
    from lossgeometry.app.experiments.registry import available_experiments

    exps = available_experiments()
    if cfg.get("experiment") not in exps:
        raise ValueError(
            f"{where}: 'experiment = {cfg.get('experiment')!r}' is not a known experiment; "
            f"known: {sorted(exps)}"
        )
    return cfg


def _experiment_path(config: str | os.PathLike) -> Path:
    from lossgeometry.app.experiments.registry import bundled_configs

    path = Path(config)
    if path.is_file():
        return path
    bundled = bundled_configs()
    if str(config) in bundled:
        return bundled[str(config)]
    raise FileNotFoundError(
        f"no config file {str(config)!r}; bundled experiments: {sorted(bundled)}"
    )


def _leaves(node: Mapping[str, Any], prefix: str) -> list[str]:
    return sorted(prefix + k for k in node)


def _no_key(key: str, part: str, here: str, valid: list[str], free: bool) -> ValueError:
    """``grid key 'train.stpes': no key 'stpes' in [train]; did you mean 'train.steps'? ...``"""
    where = f"[{here}]" if here else "the top level of the config"
    prefix = here + "." if here else ""
    hint = closest(prefix + part, valid)
    did = f"; did you mean {hint!r}?" if hint else "."
    add = ". To sweep a key the config does not set, add it to the config first." if free else ""
    return ValueError(
        f"grid key {key!r}: no key {part!r} in {where}{did} Valid keys there: "
        f"{', '.join(valid) or '(none)'}{add}"
    )


def _check_key(base: Mapping[str, Any], key: str, job: str) -> Any:
    """Check one dotted grid key; return the base config's value there (or None if unset).

    ``job="analyze"``: each table's keys are those of the typed config (the schema, e.g.
    ``train.steps``, the data set's loader options, the built-in model's builder options),
    whether or not the base config sets them; tables of free keys (``model.kwargs``,
    ``train.kwargs``, ``report.NAME``) and experiment configs (``job="run"``) accept the keys
    the base config has.
    """
    table: Any = None
    if job == "analyze":
        from lossgeometry.app.config import as_config

        table = as_config(base)
    node: Any = base
    parts = key.split(".")
    for i, part in enumerate(parts):
        here = ".".join(parts[:i])
        prefix = here + "." if here else ""
        last = i == len(parts) - 1
        if table is not None:  # a typed table: its schema says what the key is
            kinds = table.schema_keys()
            if part not in kinds:
                raise _no_key(key, part, here, _leaves(kinds, prefix), free=False)
            kind = kinds[part]
            value = node.get(part) if isinstance(node, Mapping) else None
            if kind == "value":
                if not last:
                    raise ValueError(
                        f"grid key {key!r}: {prefix + part!r} is a value ({value!r}), not a "
                        "table with keys"
                    )
                return value
            child = table[part] if kind == "table" else (value or {})
            if last:
                keys = child.schema_keys() if kind == "table" else child
                raise ValueError(
                    f"grid key {key!r} is a table; sweep one of its keys: "
                    f"{', '.join(_leaves(keys, key + '.')) or '(none set)'}"
                )
            table = child if kind == "table" else None
            node = value if isinstance(value, Mapping) else {}
            continue
        if not isinstance(node, Mapping):
            raise ValueError(
                f"grid key {key!r}: {here!r} is a value ({node!r}), not a table with keys"
            )
        if part not in node:
            raise _no_key(key, part, here, _leaves(node, prefix), free=True)
        node = node[part]
        if last and isinstance(node, Mapping):
            raise ValueError(
                f"grid key {key!r} is a table; sweep one of its keys: "
                f"{', '.join(_leaves(node, key + '.'))}"
            )
    return node


def check_grid(
    base: Mapping[str, Any], grid: Mapping[str, Any], job: str | None = None
) -> dict[str, list[Any]]:
    """Validate a grid against the config it will modify; return it with lists as values.

    Every key must name an option the config has (a typo must not silently run the
    unchanged config): for ``job="analyze"`` any key of the typed config schema (see
    :func:`lossgeometry.app.config.load_config`), for an experiment a key its TOML sets.
    Every value list must be non-empty and free of duplicates. The values themselves are
    checked by each run (a bad value fails that run, with the message, not the sweep).

    Args:
        base: the base config (:func:`load_base_config`).
        grid: dotted keys to lists of values.
        job: ``"analyze"`` or ``"run"``; default: ``"run"`` if ``base`` has an
            ``experiment`` key, else ``"analyze"``.

    Raises:
        ValueError: naming the bad key, the closest valid one and the valid keys at that
            level.
    """
    if job is None:
        job = "run" if "experiment" in base else "analyze"
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(
            "the grid is empty: give a mapping of dotted config keys to lists of values, e.g. "
            "{'model.width': [64, 128], 'seed': [0, 1]}"
        )
    out: dict[str, list[Any]] = {}
    for key, values in grid.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"grid key {key!r}: expected a dotted config key like 'model.width'")
        node = _check_key(base, key, job)
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
            raise ValueError(
                f"grid key {key!r}: give a list of values (e.g. [{node!r}]), got {values!r}"
            )
        if not values:
            raise ValueError(f"grid key {key!r}: the list of values is empty")
        for v in values:
            if not _is_value(v):
                raise ValueError(
                    f"grid key {key!r}: value {v!r} is not a number, bool, string or list of "
                    "them (sweep nested keys with dotted names)"
                )
        seen = Counter(json.dumps(v, sort_keys=True) for v in values)
        dupes = [v for v, c in seen.items() if c > 1]
        if dupes:
            raise ValueError(f"grid key {key!r}: duplicate values {dupes}")
        out[key] = list(values)
    return out


def _is_value(v: Any) -> bool:
    if isinstance(v, (bool, int, float, str)):
        return True
    return isinstance(v, (list, tuple)) and all(_is_value(x) for x in v)


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    node = cfg
    for part in path:  # a schema key the base does not set: its tables are created
        node = node.setdefault(part, {})
    node[last] = copy.deepcopy(list(value) if isinstance(value, tuple) else value)


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "-".join(_fmt_value(x) for x in v)
    return str(v)


def _short_hash(obj: Any) -> str:
    blob = json.dumps(to_jsonable(obj), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def run_name(params: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """The directory name of a run: ``width=64,seed=0`` (filesystem-safe, stable).

    Characters other than letters, digits and ``. _ + - = ,`` become ``_``; a name longer
    than 120 characters is cut and ends with a hash of the parameters.
    """
    labels = labels or short_labels(list(params))
    name = ",".join(f"{labels[k]}={_fmt_value(v)}" for k, v in params.items())
    name = _SAFE.sub("_", name)
    if len(name) > _NAME_MAX:
        name = name[: _NAME_MAX - 9] + "-" + _short_hash(params)
    return name


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """One point of an expanded grid."""

    name: str
    """Directory name (:func:`run_name`)."""
    params: dict[str, Any]
    """The swept values, by dotted key."""
    config: dict[str, Any]
    """The base config with the swept values set."""


def expand_grid(
    base: Mapping[str, Any], grid: Mapping[str, Any], job: str | None = None
) -> list[GridPoint]:
    """The cartesian product of ``grid`` applied to ``base`` (first key varies slowest).

    Names are unique: if two points sanitize to the same name, a hash of the parameters is
    appended to each of them. ``job`` as in :func:`check_grid`.
    """
    grid = check_grid(base, grid, job)
    keys = list(grid)
    labels = short_labels(keys)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, combo, strict=True))
        cfg = copy.deepcopy(dict(base))
        for k, v in params.items():
            _set(cfg, k, v)
        points.append(GridPoint(run_name(params, labels), params, cfg))
    counts = Counter(p.name for p in points)
    return [
        dataclasses.replace(p, name=f"{p.name}-{_short_hash(p.params)}")
        if counts[p.name] > 1
        else p
        for p in points
    ]


def config_hash(job: str, cfg: Mapping[str, Any]) -> str:
    """A stable hash of a run: the job, the whole merged config and what the config names.

    The config counts with its report options; what it names is the source of a model
    factory, local data files and the lossgeometry and torch versions
    (:func:`lossgeometry.app.outdir.inputs`): an edited factory file or an upgrade reruns
    the run instead of skipping it.
    """
    from lossgeometry.app.outdir import inputs

    blob = json.dumps(
        {"job": job, "config": to_jsonable(cfg), "inputs": to_jsonable(inputs(cfg))},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
