"""The ``[data]`` and ``[model]`` tables: keys checked against the functions they feed.

Their valid keys are not fixed: they are the keyword parameters of the chosen data set's
loader (plus those of :func:`lossgeometry.data.load`) and of the chosen built-in model's
builder (``lossgeometry.models.mlp``, ``cnn``, ...). Both tables read those signatures
(:mod:`inspect`) and check each value against the parameter's annotation, so an unknown key
names the closest valid one (``[data] nn: unknown option of data set 'digits'; did you mean
'n'?``) and a wrong type names the key, exactly as the fixed tables do. Values are stored as
given (no conversion), so the config hash of a file does not change.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from lossgeometry.app.config.base import ConfigTable, KeyKind
from lossgeometry.options import (
    OptionsError,
    check_value,
    closest,
    located,
    unknown_key_message,
)

__all__ = ["DataConfig", "ModelConfig", "data_options", "model_options"]

_NOT_DATA_KEYS = ("name", "dtype")
"""Parameters of ``data.load`` a ``[data]`` table does not set: ``name`` is the table's own
key and the dtype is the top-level ``dtype``."""


def _keyword_params(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``fn``'s parameters that take a keyword -> their annotations (``Any`` if unknown)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve: check keys, not types
        hints = {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: hints.get(p.name, Any)
        for p in inspect.signature(fn).parameters.values()
        if p.kind in kinds and p.name not in skip
    }


def data_options(name: str) -> dict[str, Any]:
    """The ``[data]`` keys data set ``name`` accepts (besides ``name``) -> their types.

    They are the keyword parameters of :func:`lossgeometry.data.load` (``n``, ``seed``,
    ``classes``, ``one_hot``, ``standardize``) and the options of the data set's loader
    (``split``, ``num_samples``, ``d``, ``k``, ...).

    Raises:
        OptionsError: ``name = 'digts': unknown data set; did you mean 'digits'?``.
    """
    from lossgeometry import data
    from lossgeometry.data.registry import get_spec, normalize_name

    key = name.partition(":")[0]
    if normalize_name(key) not in data.available():
        hint = closest(normalize_name(key), data.available())
        did = f"; did you mean {hint!r}?" if hint else "."
        raise OptionsError(
            f"name = {name!r}: unknown data set{did} Valid names: {', '.join(data.available())} "
            "(local files as 'mnist:DIR', 'fashion-mnist:DIR', 'cifar10:DIR')"
        )
    spec = get_spec(key)
    out = _keyword_params(data.load, _NOT_DATA_KEYS)
    loader = _keyword_params(spec.loader)
    out.update({k: loader.get(k, Any) for k in spec.options})
    return out


def _check_table(options: Mapping[str, Any], valid: Mapping[str, Any], what: str) -> None:
    """Every key of ``options`` in ``valid`` and of the type ``valid`` gives it."""
    for k, v in options.items():
        if k not in valid:
            raise OptionsError(unknown_key_message(k, ["name", *valid], what=what))
        check_value(v, valid[k], k)


def as_table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise OptionsError(located(f"expected a table, got {value!r}", where))
    return dict(value)


@dataclasses.dataclass(frozen=True)
class DataConfig(ConfigTable):
    """``[data]``: a data set of :func:`lossgeometry.data.load` and its options.

    Read like the TOML table: ``{"name": "digits", "n": 128, "standardize": True}``.
    """

    name: str = "digits"
    """A name of :func:`lossgeometry.data.available`; local files as ``"mnist:DIR"``."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The other keys of the table: keyword arguments of ``data.load`` for this data set.
    ``one_hot`` defaults to true for MSE on class labels (see ``build_problem``)."""

    def check(self) -> None:
        """Keys and types against the data set's loader (see :func:`data_options`)."""
        _check_table(self.options, data_options(self.name), f"option of data set {self.name!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "data") -> DataConfig:
        """Read a ``[data]`` table; errors name ``[where] key``."""
        table = as_table(data or {}, where)
        name = table.pop("name", cls.__dataclass_fields__["name"].default)
        try:
            return cls(name=name, options=table)
        except OptionsError as e:
            raise OptionsError(located(str(e), where)) from None

    def _view(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    def schema_keys(self) -> dict[str, KeyKind]:
        """``name`` and every option of this data set (not only those the file sets)."""
        return {"name": "value", **dict.fromkeys(data_options(self.name), "value")}


def model_key(name: str) -> str:
    """The registry key of a built-in model name (as ``models.build`` reads it)."""
    return name.strip().lower().replace("-", "_")


def model_options(name: str) -> dict[str, Any] | None:
    """The ``[model]`` keys built-in model ``name`` accepts (besides ``name``) -> their types.

    They are the parameters of its builder (``lossgeometry.models.mlp`` etc.); ``None`` for
    a model registered with ``models.register`` whose builder is not a module function (its
    keys are then checked when it is built).

    Raises:
        OptionsError: ``name = 'mpl': unknown model; did you mean 'mlp'?``.
    """
    from lossgeometry import models

    key = model_key(name)
    if key not in models.available():
        hint = closest(key, models.available())
        did = f"; did you mean {hint!r}?" if hint else "."
        raise OptionsError(
            f"name = {name!r}: unknown model{did} Valid names: {', '.join(models.available())} "
            "(or your own: [model] factory = 'module:function')"
        )
    builder = getattr(models, key, None)
    if not callable(builder):
        return None
    return _keyword_params(builder)


_FACTORY_KEYS = {"factory": str, "kwargs": dict[str, Any] | None}


@dataclasses.dataclass(frozen=True)
class ModelConfig(ConfigTable):
    """``[model]``: a built-in model and its builder's options, or a user factory.

    A built-in model reads ``{"name": "mlp", "width": 256, ...}``; a factory
    ``{"factory": "pkg.mod:make", "kwargs": {...}}`` (``[model.kwargs]`` are passed to it).
    """

    name: str | None = None
    """A name of ``lossgeometry.models.available()``; ``None`` with a factory."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The builder's keyword arguments (``d_in``/``d_out``, channels, ... come from the data
    unless given)."""
    factory: str | None = None
    """``"package.module:function"`` or ``"path/file.py:function"`` (see ``load_factory``)."""
    kwargs: dict[str, Any] | None = None
    """Keyword arguments of the factory (``[model.kwargs]``)."""

    def check(self) -> None:
        """A factory takes only ``factory``/``kwargs``; a built-in model its builder's keys."""
        if self.factory is not None:
            for k in self.options:  # the file's other keys, `name` included
                raise OptionsError(
                    unknown_key_message(k, _FACTORY_KEYS, what="option with a model factory")
                )
            return
        if self.name is None:
            raise OptionsError("name: missing; give a built-in model (name = 'mlp') or a factory")
        extra = {"kwargs": self.kwargs} if self.kwargs is not None else {}
        valid = model_options(self.name)
        if valid is not None:
            _check_table({**self.options, **extra}, valid, f"option of model {self.name!r}")
        elif extra:
            raise OptionsError(
                unknown_key_message("kwargs", ["name"], what=f"option of model {self.name!r}")
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "model") -> ModelConfig:
        """Read a ``[model]`` table; errors name ``[where] key``."""
        table = as_table(data or {}, where)
        try:
            if "factory" in table:
                factory = table.pop("factory")
                kwargs = table.pop("kwargs", None)
                return cls(name=None, options=table, factory=factory, kwargs=kwargs)
            name = table.pop("name", None)
            kwargs = table.pop("kwargs", None)
            return cls(name=name, options=table, kwargs=kwargs)
        except OptionsError as e:
            raise OptionsError(located(str(e), where)) from None

    @property
    def is_factory(self) -> bool:
        """Whether a user factory builds the model."""
        return self.factory is not None

    @property
    def builder_key(self) -> str | None:
        """The registry key of a built-in model (``"mlp"``), ``None`` with a factory."""
        return None if self.name is None else model_key(self.name)

    def _view(self) -> dict[str, Any]:
        if self.factory is not None:
            out: dict[str, Any] = {"factory": self.factory}
            if self.kwargs is not None:
                out["kwargs"] = self.kwargs
            return out
        return {"name": self.name, **self.options}

    def schema_keys(self) -> dict[str, KeyKind]:
        """``factory``/``kwargs`` with a factory; else ``name`` and the builder's options."""
        if self.factory is not None:
            return {"factory": "value", "kwargs": "free"}
        valid = model_options(self.name or "")
        return {"name": "value", **dict.fromkeys(valid or self.options, "value")}
