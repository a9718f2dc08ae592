"""Half precision never gives a silent wrong answer: float16/bfloat16 models are measured in
float32 (on casts; the model is unchanged), and autocast is off inside every measurement."""

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import lossgeometry as lg
from lossgeometry.problem import PrecisionWarning

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
HALF = [torch.float16, torch.bfloat16]


def _half_and_reference(dtype, device="cpu"):
    """A half-precision MLP with BatchNorm (eval) and the float32 model with the same values."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 24), nn.BatchNorm1d(24), nn.Tanh(), nn.Linear(24, 2))
    model[1].running_mean.normal_()
    model[1].running_var.uniform_(0.5, 2.0)
    model = model.eval().to(device=device, dtype=dtype)
    ref = copy.deepcopy(model).float()  # the same (rounded) parameters, in float32
    g = torch.Generator().manual_seed(1)
    X = torch.randn(10, 4, generator=g).to(device)
    Y = torch.randn(10, 2, generator=g).to(device)
    return model, ref, X, Y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", HALF)
def test_half_model_measured_in_float32(dtype, device):
    model, ref, X, Y = _half_and_reference(dtype, device)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(PrecisionWarning, match="measures it in torch.float32"):
        pb = lg.Problem(model, X, Y)
    pb32 = lg.Problem(ref, X, Y)
    assert pb.dtype == torch.float32 and pb.summary()["dtype"] == "float32"
    w = pb.params()
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, pb32.params(), rtol=0, atol=0)
    torch.testing.assert_close(pb.loss(), pb32.loss(), rtol=1e-6, atol=0)
    torch.testing.assert_close(pb.grad(), pb32.grad(), rtol=1e-5, atol=1e-7)
    v = torch.randn(pb.p, generator=torch.Generator().manual_seed(2)).to(device)
    torch.testing.assert_close(pb.hvp(w, v), pb32.hvp(w, v), rtol=1e-5, atol=1e-6)
    # tangent-kernel lambda_min and the Hessian's extreme eigenvalues: float32 tolerance
    k, k32 = lg.kernel_spectrum(pb, solver="dense"), lg.kernel_spectrum(pb32, solver="dense")
    assert k.lambda_min > 0
    assert k.lambda_min == pytest.approx(k32.lambda_min, rel=1e-4)
    assert k.lambda_max == pytest.approx(k32.lambda_max, rel=1e-5)
    h = lg.hessian_spectrum(pb, top=1, bottom=1, solver="dense")
    h32 = lg.hessian_spectrum(pb32, top=1, bottom=1, solver="dense")
    np.testing.assert_allclose(h.top, h32.top, rtol=1e-5)
    np.testing.assert_allclose(h.bottom, h32.bottom, rtol=1e-4, atol=1e-5 * abs(h32.top[0]))
    # the user's model is untouched (dtype and values)
    for name, t in model.state_dict().items():
        assert t.dtype == before[name].dtype and torch.equal(t, before[name])


def test_half_spectrum_oracle_float64():
    """The float16 model's kernel lambda_min agrees with a float64 dense oracle of the same
    values to float32 accuracy (in half precision it was 58 % low)."""
    model, ref, X, Y = _half_and_reference(torch.float16)
    with pytest.warns(PrecisionWarning):
        pb = lg.Problem(model, X, Y)
    p64 = lg.Problem(copy.deepcopy(ref).double(), X.double(), Y.double())
    lam = lg.kernel_spectrum(pb, solver="dense").lambda_min
    lam64 = lg.kernel_spectrum(p64, solver="dense").lambda_min
    assert lam == pytest.approx(lam64, rel=1e-3)


@pytest.mark.parametrize("dtype", HALF)
def test_half_model_copies_and_params(dtype):
    model, _, X, Y = _half_and_reference(dtype)
    with pytest.warns(PrecisionWarning):
        pb = lg.Problem(model, X, Y)
    copy32 = pb.to()  # the copy is converted to the dtype it is measured in
    assert next(copy32.model.parameters()).dtype == torch.float32
    assert next(model.parameters()).dtype == dtype
    w = pb.params() + 1e-3
    moved = pb.with_params(w)  # float32 copy: w is held exactly
    torch.testing.assert_close(moved.params(), w, rtol=0, atol=0)
    torch.testing.assert_close(moved.loss(), pb.loss(w), rtol=1e-6, atol=0)
    pb.set_params(w)  # the half model stores w rounded to its dtype
    torch.testing.assert_close(pb.params(), w.to(dtype).float(), rtol=0, atol=0)
    with pytest.warns(PrecisionWarning):
        back = copy32.to(dtype=dtype)  # asked for half: measured in float32 again
    assert back.dtype == torch.float32
    assert next(back.model.parameters()).dtype == dtype


def test_float32_model_gives_no_precision_warning():
    _, ref, X, Y = _half_and_reference(torch.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        pb = lg.Problem(ref, X, Y)
        pb.to(dtype=torch.float64)


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_is_off_inside_measurements(device):
    """Under an active torch.autocast every view runs in the Problem's dtype, as outside."""
    _, ref, X, Y = _half_and_reference(torch.float16, device)
    ce = nn.Linear(4, 3).to(device)

    def hinge(out, y):  # a custom loss with a matmul, which autocast would run in half
        return (out @ torch.ones(out.shape[1], 1, device=out.device)).squeeze(1) - y.float()

    cases = [
        lg.Problem(ref, X, Y),
        lg.Problem(ce, X, torch.arange(10, device=device) % 3, loss="cross_entropy"),
        lg.Problem(ce, X, torch.zeros(10, device=device), loss=hinge),
    ]
    half = torch.bfloat16 if device == "cpu" else torch.float16
    v = torch.randn(cases[0].p, generator=torch.Generator().manual_seed(3)).to(device)
    u = torch.randn(10, 2, generator=torch.Generator().manual_seed(4)).to(device)
    plain = [(pb.loss(), pb.grad(), pb.F()) for pb in cases]
    hv, jv, vj = cases[0].hvp(None, v), cases[0].jvp(None, v), cases[0].vjp(None, u)
    mon = lg.Monitor(cases[0], extra={"lam": lambda p, w: lg.kernel_spectrum(p, w).lambda_min})
    rec = mon.step(0)
    with torch.autocast(device_type=device, dtype=half):
        got = [(pb.loss(), pb.grad(), pb.F()) for pb in cases]
        hv_a, jv_a = cases[0].hvp(None, v), cases[0].jvp(None, v)
        vj_a = cases[0].vjp(None, u)
        rec_a = lg.Monitor(cases[0], extra=mon.extra).step(0)  # extras too
        built = lg.Problem(ref, X, Y)  # construction under autocast too
        assert built.loss().dtype == torch.float32
        # a measurement that is not a view refuses rather than run in half precision
        with pytest.raises(RuntimeError, match="autocast is active"):
            lg.kernel_spectrum(cases[0], solver="dense")
        with lg.problem.full_precision(cases[0].device):
            lam_a = lg.kernel_spectrum(cases[0], solver="dense").lambda_min
    for (L, g, F), (La, ga, Fa) in zip(plain, got, strict=True):
        assert La.dtype == g.dtype == Fa.dtype == torch.float32
        torch.testing.assert_close(La, L, rtol=1e-6, atol=0)
        torch.testing.assert_close(ga, g, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(Fa, F, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(hv_a, hv, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(jv_a, jv, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(vj_a, vj, rtol=1e-6, atol=1e-7)
    assert rec_a == pytest.approx(rec, rel=1e-6)
    assert lam_a == pytest.approx(rec["lam"], rel=1e-5)


@pytest.mark.parametrize("dtype", HALF)
def test_monitor_on_a_half_model_records_float32(dtype):
    model, ref, X, Y = _half_and_reference(dtype)
    with pytest.warns(PrecisionWarning):
        pb = lg.Problem(model, X, Y)
    mon = lg.Monitor(pb)
    rec = mon.step(0)
    assert rec["loss"] == pytest.approx(float(lg.Problem(ref, X, Y).loss()), rel=1e-6)
