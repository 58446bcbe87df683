"""The five network plugins: contract, shapes, band embedding, hyper-parameters, learning."""
from __future__ import annotations

import pytest
import torch
from test_training_table import synthetic_table

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.core.model import ModelDims
from permaplug.core.plugins import get_model, get_registry
from permaplug.data import features as F
from permaplug.training.config import BASELINES, NETWORKS
from permaplug.training.loop import TrainConfig, evaluate_loss, train_model
from permaplug.training.normalise import Normaliser
from permaplug.training.predict import window_set
from permaplug.training.windows import table_arrays, window_index

DIMS = ModelDims(n_dynamic=7, n_static=3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest


@pytest.fixture(params=NETWORKS)
def network(request):
    torch.manual_seed(0)
    return get_model(request.param)(DIMS)


def _inputs(b=5, dims=DIMS):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(b, dims.window, dims.n_dynamic, generator=g),
            torch.randint(0, dims.n_bands, (b,), generator=g),
            torch.randn(b, dims.n_static, generator=g))


def test_all_models_are_registered():
    names = get_registry().names("model")
    for name in NETWORKS + BASELINES:
        assert name in names
    assert "window-mlp" not in names  # the template is an example, not a plugin


def test_output_shape_and_dtype(network):
    out = network.eval()(*_inputs())
    assert out.shape == (5, schema.N_LAYERS)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_band_embedding_of_size_four_changes_the_output(network):
    emb = network.context.embedding
    assert emb.embedding_dim == 4 and emb.num_embeddings == DIMS.n_bands
    x, band, static = _inputs()
    network.eval()
    a = network(x, torch.zeros_like(band), static)
    b = network(x, torch.ones_like(band), static)
    assert not torch.allclose(a, b)


def test_every_window_month_and_static_feature_matters(network):
    """The receptive field covers the whole window: the first month changes the output."""
    x, band, static = _inputs(2)
    network.eval()
    base = network(x, band, static)
    x2 = x.clone()
    x2[:, 0] += 3.0
    assert not torch.allclose(base, network(x2, band, static))
    assert not torch.allclose(base, network(x, band, static + 3.0))


def test_works_without_static_features():
    dims = ModelDims(n_dynamic=4, n_static=0)
    for name in NETWORKS:
        torch.manual_seed(0)
        out = get_model(name)(dims).eval()(*_inputs(3, dims))
        assert out.shape == (3, 4)


def test_unknown_hyper_parameter_is_refused(network):
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        type(network)(DIMS, no_such_thing=1)


def test_hyper_parameters_change_the_network():
    key = {"tcn": "channels", "transformer": "d_model", "conv1dlstm": "hidden_size",
           "gru": "hidden_size", "bilstm": "hidden_size"}
    for name in NETWORKS:
        cls = get_model(name)
        small = sum(p.numel() for p in cls(DIMS, **{key[name]: 16}).parameters())
        default = sum(p.numel() for p in cls(DIMS).parameters())
        assert small < default, name


def test_transformer_checks_heads():
    with pytest.raises(ConfigError, match="nhead"):
        get_model("transformer")(DIMS, d_model=30, nhead=4)


@pytest.mark.parametrize("name", NETWORKS)
def test_each_network_learns_a_tiny_data_set(name):
    table = synthetic_table("2001-01", "2006-12", n_bands=2)
    arrays = table_arrays(table, F.PAPER_DYNAMIC, ("bdod_l1",))
    norm = Normaliser.fit(arrays, (2001, 2006))
    data = window_set(arrays, norm, window_index(arrays, (2001, 2006)))
    dims = ModelDims(n_dynamic=len(F.PAPER_DYNAMIC), n_static=1)
    torch.manual_seed(0)
    model = get_model(name)(dims)
    before = evaluate_loss(model, data, 64, torch.device("cpu"))
    hist = train_model(model, data, TrainConfig(epochs=12, batch_size=16), progress=False)
    after = evaluate_loss(model, data, 64, torch.device("cpu"))
    assert hist.train[-1] < hist.train[0]
    assert after < 0.3 * before, (before, after)


def test_template_model_follows_the_contract():
    from permaplug.plugins.models.template import WindowMLP

    torch.manual_seed(0)
    model = WindowMLP(DIMS, hidden_size=8)
    assert model(*_inputs()).shape == (5, 4)
    assert model.context.embedding.embedding_dim == 4


def test_all_expands_to_the_networks_and_baselines_come_along():
    from permaplug.training.config import resolve_models

    models = resolve_models(["all"])
    assert models[:5] == list(NETWORKS) and models[-len(BASELINES):] == list(BASELINES)
    assert resolve_models(["gru"]) == ["gru", *BASELINES]


def test_hparam_parsing_scopes_and_types():
    from permaplug.training.config import parse_hparams

    hp = parse_hparams(["hidden_size=128", "tcn.dropout=0.25", "num_layers=3"],
                       ["tcn", "gru", "bilstm", "conv1dlstm"])
    assert hp["gru"] == {"hidden_size": 128, "num_layers": 3}
    assert hp["tcn"] == {"dropout": 0.25}
    assert hp["conv1dlstm"] == {"hidden_size": 128, "num_layers": 3}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_hparams(["hidden_size"], ["gru"])
