"""Bad input gets a clear error, never a NaN, a wrong number or a deep traceback.

One table: each case is ``(id, call, error type, message fragment)``; ``call`` builds the
input and runs what a user would run. Extend the table when a new check is added.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import lossgeometry as lg
import lossgeometry.app.experiments
import lossgeometry.app.report
from lossgeometry.app.config import build_problem, load_config
from lossgeometry.kernel.spectrum import spectrum_from_kernel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[], object]
    error: type[Exception]
    match: str


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _data(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)


def _with_bad(t: torch.Tensor, i: int, value: float) -> torch.Tensor:
    t = t.clone()
    t[i, 0] = value
    return t


def _loader(X, Y, **kw) -> DataLoader:
    return DataLoader(TensorDataset(X, Y), batch_size=kw.pop("batch_size", 4), **kw)


class _Dicts(Dataset):
    """A dataset of dict samples; ``nested`` gives ``({"a": x, "b": x}, y)`` instead."""

    def __init__(self, nested: bool = False) -> None:
        self.X, self.Y = _data()
        self.nested = nested

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        if self.nested:
            return {"a": self.X[i, :2], "b": self.X[i, 2:]}, self.Y[i]
        return {"x": self.X[i], "y": self.Y[i]}


class _FunctionalDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(3, 16), nn.Linear(16, 2)

    def forward(self, x):
        return self.l2(F.dropout(torch.tanh(self.l1(x)), 0.5, self.training))


class _Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x) + 0.1 * torch.randn(x.shape[0], 2)


class _CastsToHalf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x).to(torch.bfloat16)


def _bn_model_then_train() -> lg.Problem:
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
    pb = lg.Problem(m, *_data())
    m.train()  # switched after construction: refused at the next evaluation
    return pb


def _ce_loader(labels: list[int]) -> lg.Problem:
    X, _ = _data()
    return lg.Problem.from_loader(
        _mlp(), _loader(X, torch.tensor(labels)), loss="cross_entropy"
    ).loss()


X0, Y0 = _data()
BAD_LABELS = torch.tensor([0, 1, 0, 1, 0, 5, 0, 1])  # 5 is no class of a 2-output model

CASES = [
    # -- params selection
    Case(
        "params-repeated",
        lambda: lg.Problem(_mlp(), X0, Y0, params=["0.weight", "0.weight"]),
        ValueError,
        r"params names \['0.weight'\] more than once",
    ),
    Case(
        "params-string",
        lambda: lg.Problem(_mlp(), X0, Y0, params="0.weight"),
        TypeError,
        r"list of parameter names",
    ),
    # -- random or mode-dependent models
    Case(
        "functional-dropout",
        lambda: lg.Problem(_FunctionalDropout(), X0, Y0),
        ValueError,
        r"model is random.*F\.dropout.*model\.eval\(\).*allow_dropout=True",
    ),
    Case("noise-in-forward", lambda: lg.Problem(_Noisy(), X0, Y0), ValueError, "model is random"),
    Case(
        "batchnorm-switched-to-train",
        lambda: _bn_model_then_train().loss(),
        ValueError,
        r"BatchNorm layer '1' is in train mode",
    ),
    Case(
        "dropout-switched-to-train",
        lambda: (lambda m: (lg.Problem(m.eval(), X0, Y0), m.train())[0].grad())(
            nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
        ),
        ValueError,
        r"dropout layer '1' is active",
    ),
    Case(
        "model-casts-to-half",
        lambda: lg.Problem(_CastsToHalf(), X0, Y0),
        ValueError,
        r"returns torch.bfloat16 outputs",
    ),
    # -- tensor data
    Case(
        "tensor-dict-inputs-wrong-keywords",
        lambda: lg.Problem(_mlp(), {"x": X0}, Y0),
        TypeError,
        r"called as model\(\*\*inputs\) with the keywords \['x'\].*pass \(inputs,\)",
    ),
    Case(
        "tensor-dict-inputs-unequal-samples",
        lambda: lg.Problem(_mlp(), {"a": X0, "b": X0[:3]}, Y0),
        ValueError,
        r"the tensors of X have different numbers of samples \(\['a'\]: 8, \['b'\]: 3\)",
    ),
    Case(
        "tensor-inputs-not-tensors",
        lambda: lg.Problem(_mlp(), {"a": X0, "b": "text"}, Y0),
        TypeError,
        r"X\['b'\] is str, not a tensor",
    ),
    # -- loader data: the tensor constructor's checks, naming the batch
    Case(
        "loader-nan-input",
        lambda: lg.Problem.from_loader(_mlp(), _loader(_with_bad(X0, 5, float("nan")), Y0)).loss(),
        ValueError,
        r"batch 1 of the DataLoader \(inputs\) contains NaN or Inf in 1 sample\(s\) "
        r"\(first at index 5\)",
    ),
    Case(
        "loader-inf-target",
        lambda: lg.Problem.from_loader(_mlp(), _loader(X0, _with_bad(Y0, 6, float("inf")))).grad(),
        ValueError,
        r"batch 1 of the DataLoader \(targets\) contains NaN or Inf.*index 6",
    ),
    Case(
        "loader-nan-in-probe",
        lambda: lg.Problem.from_loader(_mlp(), _loader(_with_bad(X0, 1, float("nan")), Y0)),
        ValueError,
        r"the samples \[0, 1\] of the dataset \(inputs\) contains NaN or Inf.*index 1",
    ),
    Case(
        "loader-nan-by-index",
        lambda: lg.Problem.from_loader(_mlp(), _loader(_with_bad(X0, 6, float("nan")), Y0)).loss(
            None, [2, 6]
        ),
        ValueError,
        r"the samples \[2, 6\] of the dataset \(inputs\).*index 6",
    ),
    Case(
        "loader-label-out-of-range",
        lambda: _ce_loader([0, 1, 0, 1, 0, 5, 0, 1]),
        ValueError,
        r"batch 1 of the DataLoader: class indices must lie in \[0, 1\].*\[0, 5\]",
    ),
    Case(
        "loader-label-out-of-range-in-probe",
        lambda: lg.Problem.from_loader(
            _mlp(), _loader(X0, torch.tensor([0, 2, 0, 1, 0, 1, 0, 1])), loss="cross_entropy"
        ),
        ValueError,
        r"the samples \[0, 1\] of the dataset: class indices must lie in \[0, 1\]",
    ),
    Case(
        "loader-negative-label",
        lambda: _ce_loader([0, -1, 0, 1, 0, 1, 0, 1]),
        ValueError,
        r"class indices must lie in \[0, 1\]",
    ),
    Case(
        "tensor-label-out-of-range",
        lambda: lg.Problem(
            _mlp(), X0, torch.tensor([0, 1, 0, 1, 0, 5, 0, 1]), loss="cross_entropy"
        ),
        ValueError,
        r"class indices must lie in \[0, 1\]",
    ),
    Case(
        "loader-dict-batches-without-keys",
        lambda: lg.Problem.from_loader(_mlp(), DataLoader(_Dicts(), batch_size=4)),
        TypeError,
        r"dict batches \(keys \['x', 'y'\]\).*batch_keys=\('x', 'y'\)",
    ),
    Case(
        "loader-dict-batches-wrong-key",
        lambda: lg.Problem.from_loader(
            _mlp(), DataLoader(_Dicts(), batch_size=4), batch_keys=("x", "label")
        ),
        ValueError,
        r"has no key\(s\) \['label'\]; its keys are \['x', 'y'\]",
    ),
    Case(
        "loader-batch-keys-malformed",
        lambda: lg.Problem.from_loader(_mlp(), DataLoader(_Dicts()), batch_keys="xy"),
        TypeError,
        r"batch_keys must be a pair",
    ),
    Case(
        "loader-dict-inputs-wrong-keywords",
        lambda: lg.Problem.from_loader(_mlp(), DataLoader(_Dicts(nested=True), batch_size=4)),
        TypeError,
        r"called as model\(\*\*inputs\) with the keywords \['a', 'b'\]",
    ),
    Case(
        "loader-drop-last",
        lambda: lg.Problem.from_loader(_mlp(), _loader(X0[:7], Y0[:7], drop_last=True)),
        ValueError,
        r"drops its last 3 samples \(drop_last=True\)",
    ),
    Case(
        "loader-unequal-batch",
        lambda: lg.Problem.from_loader(
            _mlp(), DataLoader(TensorDataset(X0, Y0), batch_size=4, collate_fn=_bad_collate)
        ),
        ValueError,
        r"inputs of shape \(2, 3\) and targets of shape \(1, 2\)",
    ),
    Case(
        "loader-not-tensors",
        lambda: lg.Problem.from_loader(
            _mlp(), DataLoader(TensorDataset(X0, Y0), batch_size=4, collate_fn=_list_collate)
        ),
        ValueError,
        r"the samples \[0, 1\] of the dataset has inputs of shape \(3, \.\.\.\) and targets "
        r"of shape \(2, 2\)",
    ),
]


def _file(name: str, text: str) -> str:
    """A file in a fresh temporary folder (the table's calls take no fixtures)."""
    path = Path(tempfile.mkdtemp(prefix="bad_input_")) / name
    path.write_text(text)
    return str(path)


def _hostile_config() -> object:
    marker = Path(tempfile.mkdtemp(prefix="bad_input_")) / "MARKER"
    path = _file(
        "c.toml", f'[model]\nfactory = "os:system"\n[model.kwargs]\ncommand = "touch {marker}"\n'
    )
    try:
        return build_problem(load_config(path))
    finally:
        assert not marker.exists(), "the config ran a command"


def _raising_factory() -> object:
    spec = _file("fm.py", "def make(d_in, d_out):\n    raise RuntimeError('boom')\n") + ":make"
    return build_problem(load_config(overrides={"model": {"factory": spec}, "data": {"n": 8}}))


CASES += [
    # -- configs (the typed config: keys and types named; issue #16)
    Case(
        "config-unknown-key",
        lambda: load_config(overrides={"train": {"stpes": 3}}),
        ValueError,
        r"\[train\] stpes: unknown option; did you mean 'steps'",
    ),
    Case(
        "config-float-seed",
        lambda: load_config(overrides={"seed": 1.7}),
        ValueError,
        r"seed = 1.7: expected an integer",
    ),
    Case(
        "config-sections-string",
        lambda: load_config(overrides={"report": {"sections": "problem"}}),
        ValueError,
        r'sections = \["problem"\]',
    ),
    Case(
        "config-data-string",
        lambda: load_config(overrides={"data": "digits"}),
        ValueError,
        r'data = \'digits\': expected a table; write \[data\] name = "digits"',
    ),
    Case(
        "config-file-names-code",
        _hostile_config,
        ValueError,
        r"\[model\] factory = 'os:system' names code to import and run.*--trust-config",
    ),
    Case(
        "config-loss-import-path",
        lambda: load_config(overrides={"loss": {"name": "os:system"}}),
        ValueError,
        r"\[loss\] name = 'os:system'",
    ),
    Case(
        "model-factory-raises",
        _raising_factory,
        ValueError,
        r"model factory '.*fm\.py:make' raised RuntimeError: boom \(at fm\.py, line 2\)",
    ),
    # -- saved files
    Case(
        "load-result-not-a-result",
        lambda: lg.load_result(_file("results.json", '{"meta": {}, "sections": {}}')),
        ValueError,
        r"results\.json is not a saved lossgeometry result: it has no '__type__' key",
    ),
    Case(
        "load-result-not-json",
        lambda: lg.load_result(_file("x.json", "not json")),
        ValueError,
        r"x\.json is not a saved lossgeometry result: it is not valid JSON",
    ),
    # -- eigensolvers that stop short
    Case(
        "arpack-no-eigenvalue",
        lambda: lg.hessian_spectrum(
            lg.Problem(_mlp(), X0, Y0), solver="arpack", maxiter=1, tol=1e-14
        ),
        ValueError,
        r"ARPACK stopped after maxiter=1 restarts with 0 of the 1 (largest|smallest) "
        r"eigenvalues .* no estimate to return",
    ),
]


# -- output directories and files of earlier runs (issue #16) ---------------------------------
def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="lg-bad-input-"))


def _tiny_analyze() -> dict:
    from tests.conftest import tiny_toml

    return tomllib.loads(tiny_toml(["problem"], width=8))


def _report_with(name: str, text: str) -> None:
    """A finished report whose file ``name`` then gets ``text``; then a rerun."""
    from lossgeometry.app.report.build import build_report

    out = _tmp() / "rep"
    build_report(_tiny_analyze(), out, progress=False, log=lambda s: None)
    (out / name).write_text(text)
    build_report(_tiny_analyze(), out, progress=False, log=lambda s: None)


def _a_file() -> Path:
    path = _tmp() / "taken"
    path.write_text("a file")
    return path


def _analyze_into_busy_dir() -> None:
    from lossgeometry.app.outdir import claim
    from lossgeometry.app.report.build import build_report

    out = _tmp()
    with claim(out, "sweep"):
        build_report(_tiny_analyze(), out, progress=False, log=lambda s: None)


def _corrupt_point() -> None:
    from lossgeometry.app.experiments.plstar_common import cached_point

    out = _tmp()
    (out / "points").mkdir()
    (out / "points" / "w8.json").write_text("{")
    cached_point(out, "w8", {"width": 8}, lambda: {"x": 1.0})


OUTPUT_CASES = [
    Case(
        "analyze-corrupt-state-json",
        lambda: _report_with("state.json", "{"),
        ValueError,
        r"state\.json is corrupt \(JSONDecodeError.*rerun with --fresh",
    ),
    Case(
        "analyze-corrupt-section-json",
        lambda: _report_with("sections/problem.json", "[1, 2"),
        ValueError,
        r"sections/problem\.json is corrupt.*--fresh",
    ),
    Case(
        "analyze-section-json-not-a-record",
        lambda: _report_with("sections/problem.json", "[1, 2]"),
        ValueError,
        r"sections/problem\.json is corrupt \(TypeError: not a JSON object\).*--fresh",
    ),
    Case(
        "analyze-corrupt-trajectory",
        lambda: _report_with("trajectory.json", '{"loss": '),
        ValueError,
        r"trajectory\.json is corrupt.*--fresh",
    ),
    Case(
        "analyze-output-is-a-file",
        lambda: lg.app.report.build_report(_tiny_analyze(), _a_file()),
        ValueError,
        r"output path .*taken is a file, not a directory",
    ),
    Case(
        "analyze-output-parent-is-a-file",
        lambda: lg.app.report.build_report(_tiny_analyze(), _a_file() / "rep"),
        ValueError,
        r"cannot create the output directory .*taken/rep: Not a directory",
    ),
    Case(
        "analyze-output-busy",
        _analyze_into_busy_dir,
        RuntimeError,
        r"output directory .* is in use by another lossgeometry run \(sweep, pid \d+ on ",
    ),
    Case(
        "sweep-output-is-a-file",
        lambda: lg.sweep(_tiny_analyze(), {"seed": [0]}, _a_file(), progress=False),
        ValueError,
        r"output path .*taken is a file",
    ),
    Case(
        "run-output-is-a-file",
        lambda: lg.app.experiments.run_experiment("alphabeta_halfspace", _a_file()),
        ValueError,
        r"output path .*taken is a file",
    ),
    Case(
        "experiment-corrupt-point",
        _corrupt_point,
        ValueError,
        r"points/w8\.json is corrupt \(JSONDecodeError.*--fresh",
    ),
]
CASES += OUTPUT_CASES


def _nonfinite_problem(value: float = float("nan")) -> lg.Problem:
    """A Problem whose model got a NaN (or Inf) weight after construction (a diverged step)."""
    model = _mlp()
    problem = lg.Problem(model, X0, Y0)
    with torch.no_grad():
        model[0].weight[0, 0] = value
    return problem


NOT_FINITE = r"NaN/Inf: the model or loss is not finite at this point"
_nan = _nonfinite_problem

CASES += [
    # -- non-finite models: one error on every path, never a NaN that claims success (#17)
    Case(
        "nan-hessian-spectrum-dense",
        lambda: lg.hessian_spectrum(_nan(), solver="dense"),
        ValueError,
        r"the operator returned " + NOT_FINITE,
    ),
    Case(
        "nan-hessian-spectrum-lanczos",
        lambda: lg.hessian_spectrum(_nan(), solver="lanczos"),
        ValueError,
        r"the operator returned " + NOT_FINITE,
    ),
    Case(
        "nan-hessian-spectrum-arpack",
        lambda: lg.hessian_spectrum(_nan(), solver="arpack"),
        ValueError,
        r"the operator returned " + NOT_FINITE,
    ),
    Case(
        "inf-hessian-spectrum-ggn",
        lambda: lg.hessian_spectrum(_nonfinite_problem(float("inf")), of="ggn"),
        ValueError,
        NOT_FINITE,
    ),
    Case(
        "nan-hessian-trace",
        lambda: lg.hessian_trace(_nan()),
        ValueError,
        r"the operator returned " + NOT_FINITE,
    ),
    Case(
        "nan-hessian-trace-hutchinson",
        lambda: lg.hessian_trace(_nan(), estimator="hutchinson"),
        ValueError,
        NOT_FINITE,
    ),
    Case(
        "nan-hessian-trace-exact",
        lambda: lg.hessian_trace(_nan(), estimator="exact"),
        ValueError,
        NOT_FINITE,
    ),
    Case("nan-hessian-density", lambda: lg.hessian_density(_nan()), ValueError, NOT_FINITE),
    Case("nan-hessian-bound", lambda: lg.hessian_bound(_nan()), ValueError, NOT_FINITE),
    Case(
        "nan-model-hessian-norm",
        lambda: lg.model_hessian_norm(_nan()),
        ValueError,
        r"second directional derivatives of the outputs are " + NOT_FINITE,
    ),
    Case(
        "nan-kernel-spectrum-dense",
        lambda: lg.kernel_spectrum(_nan(), solver="dense"),
        ValueError,
        r"the tangent kernel has " + NOT_FINITE,
    ),
    Case(
        "nan-kernel-spectrum-lanczos",
        lambda: lg.kernel_spectrum(_nan(), solver="lanczos", num_eigenvalues=2),
        ValueError,
        r"the operator returned " + NOT_FINITE,
    ),
    Case(
        "nan-tangent-kernel",
        lambda: lg.tangent_kernel(_nan()),
        ValueError,
        r"the tangent kernel has " + NOT_FINITE,
    ),
    Case(
        "nan-tangent-kernel-ntvp",
        lambda: lg.tangent_kernel(_nan(), method="ntvp"),
        ValueError,
        NOT_FINITE,
    ),
    Case(
        "nan-certify-plstar",
        lambda: lg.certify_plstar(_nan()),
        ValueError,
        r"the tangent kernel has " + NOT_FINITE,
    ),
    Case(
        "nan-tangent-space",
        lambda: lg.tangent_space(_nan()),
        ValueError,
        r"the Jacobian DF\(w\) has " + NOT_FINITE,
    ),
    Case(
        "nan-kernel-matrix",
        lambda: spectrum_from_kernel(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])),
        ValueError,
        r"the kernel K has " + NOT_FINITE,
    ),
]


def _bad_collate(items):
    x, y = zip(*items, strict=True)
    return torch.stack(x), torch.stack(y)[:1]


def _list_collate(items):
    x, y = zip(*items, strict=True)
    return list(x), torch.stack(y)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case) -> None:
    with pytest.raises(case.error, match=case.match):
        case.call()


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
