import pytest
import torch

from lossgeometry import models
from lossgeometry.models import available, build

SMALL = {
    "mlp": {"d_in": 3, "width": 8, "depth": 2, "d_out": 2},
    "cnn": {"channels": (2,), "input_size": 8},
    "resnet": {"width": 2, "blocks": (1,), "input_size": 8},
    "lstm_lm": {"vocab_size": 5, "embed_dim": 3, "hidden_dim": 4},
    "transformer": {"vocab_size": 5, "d_model": 4},
    "vgg": {"config": (2, "M", 3), "input_size": 4},
}


def test_available_lists_all_factories():
    assert available() == sorted(SMALL)


def test_build_dispatches():
    model = build("mlp", **SMALL["mlp"], seed=0)
    ref = models.mlp(**SMALL["mlp"], seed=0)
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert build("LSTM-LM", **SMALL["lstm_lm"]) is not None


def test_build_errors():
    with pytest.raises(ValueError, match=r"unknown model 'alexnet'; available models: \['cnn'"):
        build("alexnet")
    with pytest.raises(ValueError, match=r"bad arguments for model 'mlp'.*Signature: mlp"):
        build("mlp", d_in=3, width=4, depth=1, d_out=1, widht=3)
    with pytest.raises(ValueError, match="width must be a positive int"):
        build("mlp", d_in=3, width=0, depth=1, d_out=1)


def test_register():
    name = "tiny_test_model"
    models.register(name, lambda: torch.nn.Linear(2, 2))
    try:
        assert name in available()
        assert isinstance(build(name), torch.nn.Linear)
        with pytest.raises(ValueError, match="already registered"):
            models.register(name, lambda: None)
    finally:
        models._REGISTRY.pop(name)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_seed_determinism_and_global_rng_untouched(name):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build(name, **SMALL[name], seed=7)
    assert torch.equal(torch.get_rng_state(), state), "seeded build consumed the global RNG"
    torch.manual_seed(999)  # global state must not influence a seeded build
    b = build(name, **SMALL[name], seed=7)
    c = build(name, **SMALL[name], seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_unseeded_build_uses_global_rng(name):
    torch.manual_seed(5)
    a = build(name, **SMALL[name])
    torch.manual_seed(5)
    b = build(name, **SMALL[name])
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    state = torch.get_rng_state()
    build(name, **SMALL[name])
    assert not torch.equal(torch.get_rng_state(), state)
