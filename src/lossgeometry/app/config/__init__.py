"""TOML configurations of ``lossgeometry analyze``: typed, checked, one merge rule.

A config is a TOML file; missing keys take the built-in defaults of :data:`DEFAULT_CONFIG`
(an over-parameterized MLP on a subset of scikit-learn's digits, trained by full-batch GD).
See ``examples/*.toml`` for commented examples.

:func:`load_config` returns an :class:`AnalyzeConfig`: frozen dataclasses, one per table
(:mod:`~lossgeometry.app.config.schema`), whose fields hold the only copy of each default.
Unknown keys and values of the wrong type are errors that say where (``[train] stpes: unknown
option; did you mean 'steps'?``). The config also reads like the TOML it came from
(``cfg["train"]["lr"]``, ``cfg.get("seed")``; read-only) and ``cfg.to_dict()`` gives the plain
dict (``config.json``, config hashes).

Modules: :mod:`~.base` (the typed-table base, :func:`merge`, :data:`DTYPES`), :mod:`~.tables`
(``[data]`` and ``[model]``, checked against the loader's and the builder's signatures),
:mod:`~.schema` (the other tables and :func:`load_config`), :mod:`~.factory` (user model
factories), :mod:`~.trust` (a config file is data: it names no code unless trusted),
:mod:`~.build` (the :class:`Problem` and the training run of a config).
"""

from lossgeometry.app.config.base import (
    DTYPES,
    ConfigTable,
    KeyKind,
    merge,
    resolve_device,
    resolve_dtype,
)
from lossgeometry.app.config.build import Setup, build_problem, run_training, setup
from lossgeometry.app.config.factory import ModelFactoryError, load_factory
from lossgeometry.app.config.schema import (
    DEFAULT_CONFIG,
    AnalyzeConfig,
    LossConfig,
    ReportConfig,
    TrainConfig,
    as_config,
    load_config,
    read_toml,
)
from lossgeometry.app.config.tables import DataConfig, ModelConfig, data_options, model_options
from lossgeometry.app.config.trust import UntrustedConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "DTYPES",
    "AnalyzeConfig",
    "ConfigTable",
    "DataConfig",
    "KeyKind",
    "LossConfig",
    "ModelConfig",
    "ModelFactoryError",
    "ReportConfig",
    "Setup",
    "TrainConfig",
    "UntrustedConfigError",
    "as_config",
    "build_problem",
    "data_options",
    "load_config",
    "load_factory",
    "merge",
    "model_options",
    "read_toml",
    "resolve_device",
    "resolve_dtype",
    "run_training",
    "setup",
]
