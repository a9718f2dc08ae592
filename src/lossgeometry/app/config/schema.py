"""The typed ``analyze`` config: one dataclass per TOML table, and how a file becomes one.

::

    seed, dtype, name, description      AnalyzeConfig (top level)
    [data]                               DataConfig    keys of the data set's loader
    [model]                              ModelConfig   a built-in model's builder keys, or
                                                       factory + [model.kwargs]
    [loss]                               LossConfig
    [train]                              TrainConfig   optimizer from the optimizer registry
    [report]                             ReportConfig  sections = [...], [report.NAME] tables

The field defaults of these classes are the built-in default (:data:`DEFAULT_CONFIG` is
``AnalyzeConfig().to_dict()``). :func:`load_config` fills a file's missing keys from it with
the one merge rule (:func:`~lossgeometry.app.config.base.merge`) and then checks everything:
an unknown key names the closest valid one (``[train] stpes: unknown option; did you mean
'steps'?``), a value of the wrong type names the key (``seed = 1.7: expected an integer``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lossgeometry.app.config.base import (
    ConfigTable,
    KeyKind,
    merge,
    resolve_device,
    resolve_dtype,
)
from lossgeometry.app.config.tables import DataConfig, ModelConfig, as_table, model_key
from lossgeometry.app.config.trust import check_file_names_no_code
from lossgeometry.options import OptionsError, closest, located
from lossgeometry.problem import LossName, Reduction, default_reduction

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEFAULT_CONFIG",
    "AnalyzeConfig",
    "LossConfig",
    "ReportConfig",
    "TrainConfig",
    "as_config",
    "load_config",
    "read_toml",
]


@dataclasses.dataclass(frozen=True)
class LossConfig(ConfigTable):
    """``[loss]``: the loss of the :class:`~lossgeometry.problem.Problem`."""

    name: LossName = "mse"
    """``"mse"``, ``"cross_entropy"`` or ``"nll"`` (integer class targets), ``"bce"``."""
    reduction: Reduction | None = None
    """``"sum"`` or ``"mean"``; unset: the loss's own default, the same as Python's
    ``Problem`` (:data:`~lossgeometry.problem.DEFAULT_REDUCTION`: ``"sum"`` for mse,
    ``L = ½ Σᵢ‖fᵢ − yᵢ‖²``; ``"mean"`` for cross_entropy). Left unset in the built-in
    config, so changing only ``name`` never carries one loss's reduction to another."""
    chunk_size: int | None = None
    """Samples per chunk of the full-data passes (unset: the Problem's default)."""

    @property
    def effective_reduction(self) -> Reduction:
        """``reduction``, or the loss's default when unset (what the Problem will use)."""
        return self.reduction if self.reduction is not None else default_reduction(self.name)


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigTable):
    """``[train]``: the training run every report section measures."""

    optimizer: str = "gd"
    """A name of ``lossgeometry.optim.registry.optimizer_names()`` (case-insensitive)."""
    lr: float = 1.0
    """Learning rate; with ``lr_scale = "auto"`` in units of ``1/λ_max(∇²L(w0))``."""
    lr_scale: str | float | None = "auto"
    """``"auto"`` (``lr`` times ``auto_lr``, the inverse top Hessian eigenvalue at ``w0``) or
    ``"none"`` (``lr`` is absolute)."""
    steps: int = 400
    """Optimizer steps."""
    batch_size: int | None = 0
    """``0`` for full batch, else mini-batches of this size."""
    record_every: int = 2
    """Record the full-data loss, gradient norm, distance and PL ratio every this many steps."""
    kwargs: dict[str, Any] | None = None
    """Extra keyword arguments of the optimizer (``[train.kwargs]``)."""

    free_tables = ("kwargs",)

    def check(self) -> None:
        """The optimizer is registered; ``lr_scale`` is ``"auto"`` or ``"none"``."""
        import lossgeometry.optim  # noqa: F401  (registers the package's own optimizers)
        from lossgeometry.optim.registry import optimizer_names

        names = optimizer_names()
        if self.optimizer.lower() not in names:
            hint = closest(self.optimizer.lower(), names)
            did = f"; did you mean {hint!r}?" if hint else "."
            raise OptionsError(
                f"optimizer = {self.optimizer!r}: unknown optimizer{did} "
                f"Valid names: {', '.join(names)}"
            )
        ok = self.lr_scale in ("auto", "none", None) or (
            isinstance(self.lr_scale, float) and self.lr_scale == 1.0
        )
        if not ok:
            raise OptionsError(
                f"lr_scale = {self.lr_scale!r}: must be 'auto' (lr in units of 1/λ_max(H)) "
                "or 'none'"
            )


@dataclasses.dataclass(frozen=True)
class ReportConfig(ConfigTable):
    """``[report]``: which sections run, and each section's own options table.

    ``sections = [...]`` lists exactly the sections to run; without it each section runs if
    it is on by default or its table says ``enabled = true``. A ``[report.NAME]`` table is
    passed on to the section as a mapping (``enabled`` removed); the section checks its keys.
    """

    sections: list[str] | None = None
    """Exactly the sections to run, in report order (unset: the default ones)."""
    tables: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """``[report.NAME]`` tables by section name."""

    def check(self) -> None:
        """Section names are registered sections (the closest is named when not)."""
        if self.sections is None and not self.tables:
            return  # nothing to look up: do not import the sections
        from lossgeometry.app.sections.registry import check_report

        check_report(self.sections, self.tables, where="")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "report") -> ReportConfig:
        """Read a ``[report]`` table; errors name ``[where] key``."""
        table = as_table(data or {}, where)
        sections = table.pop("sections", None)
        if isinstance(sections, str):
            names = [s.strip() for s in sections.split(",") if s.strip()]
            raise OptionsError(
                located(
                    f"sections = {sections!r}: expected a list of section names; write "
                    f"sections = {json.dumps(names)}",
                    where,
                )
            )
        try:
            return cls(sections=sections, tables=table)
        except OptionsError as e:
            raise OptionsError(located(str(e), where)) from None

    def _view(self) -> dict[str, Any]:
        head = {} if self.sections is None else {"sections": self.sections}
        return {**head, **self.tables}

    def schema_keys(self) -> dict[str, KeyKind]:
        """``sections`` and one table of free keys per registered section."""
        from lossgeometry.app.sections.registry import available_sections

        return {"sections": "value", **{s.name: "free" for s in available_sections()}}

    def options(self, name: str) -> dict[str, Any]:
        """The ``[report.NAME]`` table for section ``name`` without ``enabled`` (a copy)."""
        return {k: v for k, v in self.tables.get(name, {}).items() if k != "enabled"}


def _default_data() -> DataConfig:
    return DataConfig(name="digits", options={"n": 128, "standardize": True})


def _default_model() -> ModelConfig:
    return ModelConfig(
        name="mlp",
        options={"width": 256, "depth": 2, "activation": "tanh", "parameterization": "ntk"},
    )


@dataclasses.dataclass(frozen=True)
class AnalyzeConfig(ConfigTable):
    """The config of ``lossgeometry analyze`` (and of the commands that build its problem).

    ``AnalyzeConfig()`` is the built-in default: an over-parameterized MLP (width 256, NTK
    parameterization) on 128 scikit-learn digits, MSE ``½Σ‖f − y‖²`` (mse's default
    reduction, ``"sum"``), 400 full-batch GD steps at ``lr = 1/λ_max``.
    :meth:`from_mapping` reads a complete config (``config.json``); :func:`load_config` and
    :func:`as_config` first fill in the defaults.
    """

    seed: int = 0
    """Seeds the model initialization, the data subset and the mini-batch order."""
    dtype: str = "float32"
    """``"float32"`` or ``"float64"`` (a name of ``DTYPES``)."""
    device: str | None = None
    """Where the model and data live: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``); unset: the CPU.
    Under torchrun it also chooses the backend (``gloo`` on the CPU, ``nccl`` on CUDA, each
    rank on GPU ``LOCAL_RANK``; docs/distributed.md)."""
    name: str | None = None
    """A label for the run (optional)."""
    description: str | None = None
    """Free text (optional)."""
    data: DataConfig = dataclasses.field(default_factory=_default_data)
    model: ModelConfig = dataclasses.field(default_factory=_default_model)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    report: ReportConfig = dataclasses.field(default_factory=ReportConfig)

    def check(self) -> None:
        """The dtype is one of ``DTYPES``; the device names a CPU or CUDA device."""
        resolve_dtype(self.dtype)
        if self.device is not None:
            resolve_device(self.device)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "") -> AnalyzeConfig:
        """Read a complete config; errors name the table and the key (``[train] stpes``)."""
        table = as_table(data or {}, where)
        for key in ("data", "model"):
            value = table.get(key)
            if isinstance(value, str):
                raise OptionsError(
                    located(
                        f"{key} = {value!r}: expected a table; write [{key}] name = "
                        f"{json.dumps(value)}",
                        where,
                    )
                )
        return super().from_mapping(table, where)


DEFAULT_CONFIG: dict[str, Any] = AnalyzeConfig().to_dict()
"""The built-in default as a dict: ``lossgeometry analyze`` with no arguments runs this."""


def _other_model(base: Mapping[str, Any], over: Mapping[str, Any]) -> bool:
    """Whether the ``[model]`` table ``over`` names another model than ``base``."""
    if "factory" in over:
        return "factory" not in base
    if "name" in over:
        return "factory" in base or model_key(str(over["name"])) != model_key(
            str(base.get("name", ""))
        )
    return False


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``merge(base, over)``, except for a ``[model]`` table naming another model.

    Such a table (another built-in name, or a factory) replaces the base's: the options of
    one model mean nothing to another.
    """
    b, o = base.get("model"), over.get("model")
    if isinstance(b, Mapping) and isinstance(o, Mapping) and _other_model(b, o):
        base = {k: v for k, v in base.items() if k != "model"}
    return merge(base, over)


def as_config(cfg: AnalyzeConfig | Mapping[str, Any] | None) -> AnalyzeConfig:
    """``cfg`` as an :class:`AnalyzeConfig`: itself, or a mapping with the defaults filled in.

    Raises:
        OptionsError: (a ``ValueError``) a bad key or value, named.
    """
    if isinstance(cfg, AnalyzeConfig):
        return cfg
    if cfg is not None and not isinstance(cfg, Mapping):
        raise TypeError(f"a config is a mapping or an AnalyzeConfig, got {type(cfg).__name__}")
    return AnalyzeConfig.from_mapping(_overlay(DEFAULT_CONFIG, cfg or {}))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the TOML does not parse.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {p} not found (see examples/*.toml)")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p} is not valid TOML: {e}") from None


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    trust: bool = False,
) -> AnalyzeConfig:
    """Read a TOML config (or none), fill in the defaults, apply ``overrides``, check it all.

    The file's tables merge key by key into :data:`DEFAULT_CONFIG`, then ``overrides`` into
    the result (:func:`~lossgeometry.app.config.base.merge`); a ``[model]`` table that names
    another model or a ``factory`` replaces the default model's table instead.

    A config file is data: it may not name code to run (``[model] factory``) unless
    ``trust=True`` (``--trust-config``) or ``overrides`` replaces that key (``--model``); see
    :mod:`~lossgeometry.app.config.trust`. ``overrides`` come from the caller and are trusted.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the TOML does not parse; :class:`~lossgeometry.options.OptionsError` for
            an unknown key or a bad value, naming the file, the table and the key;
            :class:`~lossgeometry.app.config.trust.UntrustedConfigError` for a file that names
            a model factory without ``trust``.
    """
    user = read_toml(path) if path is not None else {}
    merged = _overlay(_overlay(DEFAULT_CONFIG, user), overrides or {})
    try:
        cfg = AnalyzeConfig.from_mapping(merged)
    except OptionsError as e:
        raise OptionsError(f"{path}: {e}" if path is not None else str(e)) from None
    if path is not None and not trust:
        check_file_names_no_code(cfg.to_dict(), overrides, path)
    return cfg
