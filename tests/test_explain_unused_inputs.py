"""A model that ignores an input (issue 15, item 6): explainers give it zero attributions
instead of autograd's "appears to not have been used in the graph" crash, and a third-party
model that ignores ``static`` trains, projects-ready, and is explained through the CLI."""
from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import torch
from click.testing import CliRunner
from conftest import RUN_FAST

import permaplug
from permaplug.cli import cli
from permaplug.core import plugins as plugmod
from permaplug.core.explainer import ExplainInputs
from permaplug.core.plugins import get_explainer

W, F, S, L = 6, 3, 2, 4
DYN = ["t2m", "tp", "swvl1"]
STA = ["bdod_l1", "soc_l1"]


class IgnoresStatic(torch.nn.Module):
    """y = sum_t,f x a + band offset: ``static`` never enters the graph."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(2)
        self.a = torch.nn.Parameter(torch.randn(W, F, L, generator=g))
        self.offset = torch.nn.Parameter(torch.randn(6, L, generator=g))

    def forward(self, x, band, static):
        return torch.einsum("nwf,wfl->nl", x, self.a) + self.offset[band]


def _inputs(n: int, seed: int) -> ExplainInputs:
    g = torch.Generator().manual_seed(seed)
    return ExplainInputs(torch.randn(n, W, F, generator=g),
                         torch.as_tensor(np.arange(n) % 3, dtype=torch.int64),
                         torch.randn(n, S, generator=g))


def test_gradient_shap_gives_zero_static_attributions_to_a_model_ignoring_static():
    model = IgnoresStatic()
    one = _inputs(1, 0)
    bg = ExplainInputs(one.x.repeat(4, 1, 1), torch.tensor([0, 1, 2, 0]), one.static.repeat(4, 1))
    ex = _inputs(5, 1)
    ds = get_explainer("shap")(nsamples=40).explain(model, bg, ex, DYN, STA)
    assert ds["static"].dims == ("sample", "static_feature", "layer")
    assert (ds["static"].values == 0.0).all()
    expected = np.einsum("nwf,wfl->nwfl", (ex.x - bg.x.mean(0)).numpy(), model.a.detach().numpy())
    np.testing.assert_allclose(ds["dynamic"].values, expected, atol=1e-4)
    total = ds["dynamic"].sum(("step", "feature")) + ds["static"].sum("static_feature")
    assert float(abs(total + ds["expected_value"] - ds["prediction"]).max()) < 1e-3


def test_kernel_shap_also_gives_zero_to_an_unused_input():
    model = IgnoresStatic()
    ds = get_explainer("kernel")(nsamples=200, n_background=4).explain(
        model, _inputs(6, 0), _inputs(2, 1), DYN, STA)
    np.testing.assert_allclose(ds["static"].values, 0.0, atol=1e-6)


class NoStaticModel(permaplug.Model):
    """A third party's model that does not use ``static`` (nor the band)."""

    name = "no-static"
    description = "test: a GRU that ignores the static features"
    default_hparams: ClassVar[dict[str, Any]] = {"hidden_size": 8}

    def __init__(self, dims, **hparams) -> None:
        super().__init__(dims, **hparams)
        self.gru = torch.nn.GRU(dims.n_dynamic, int(self.hparams["hidden_size"]),
                                batch_first=True)
        self.band_embedding = torch.nn.Embedding(dims.n_bands, dims.band_embedding)
        self.head = torch.nn.Linear(int(self.hparams["hidden_size"]), dims.n_layers)

    def forward(self, x, band, static):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


class NoStaticPlugin:
    __name__ = "permaplug_no_static"

    @plugmod.hookspecs.hookimpl
    def register_models(self, register):
        register(NoStaticModel)


def test_explain_cli_on_a_third_party_model_that_ignores_static(demo_catalog, tmp_path,
                                                               monkeypatch):
    """On the demo data (which has static features), the crash of the issue's case."""
    reg = plugmod.build_registry(extra_plugins=[(NoStaticPlugin(), "permaplug-no-static")])
    monkeypatch.setattr(plugmod, "_registry", reg)
    out = tmp_path / "run"
    args = [a if a != "gru" else "no-static" for a in RUN_FAST if a != "hidden_size=8"]
    args = [a for a in args if a != "--hparam"]
    res = CliRunner().invoke(cli, ["run", "--catalog", str(demo_catalog), *args,
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["explain", str(out), "--n-background", "8",
                                   "--n-explained", "4", "--nsamples", "20", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "no-static: additivity gap" in res.output
    import xarray as xr

    [nc] = list((out / "explanations").rglob("*.nc"))
    ds = xr.load_dataset(nc)
    static_vars = [v for v in ds.data_vars if "static" in ds[v].dims
                   or "static_feature" in ds[v].dims]
    assert static_vars, list(ds.data_vars)
    for v in static_vars:
        vals = ds[v].values
        assert vals.size > 0, v  # the demo run has static features
        if np.issubdtype(vals.dtype, np.number):
            assert np.nanmax(np.abs(vals)) == 0.0, v
    doc = json.loads((out / "explanations" / "shap" / "additivity.json").read_text())
    assert doc["models"]["no-static"]["relative_gap"] < 1.0
