"""explain_run on a real (tiny) run folder: scores, additivity, files, data label."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _projection_fixtures import hist_table, tiny_run

from permaplug.core import schema
from permaplug.core.errors import ConfigError
from permaplug.explain import pipeline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tinyrun"))


@pytest.fixture(scope="module")
def explained(run):
    out = pipeline.explain_run(run.path, "shap", n_background=40, n_explained=8,
                               options={"nsamples": 300}, progress=False,
                               table=hist_table(start="2013-01-01"))
    return out


def test_select_windows_spreads_over_bands_and_is_disjoint():
    index = np.stack([np.tile(np.arange(6), 60), np.repeat(np.arange(60), 6)], 1)
    bg, ex = pipeline.select_windows(index, 100, 10, seed=0)
    assert len(bg) == 100 and len(ex) == 10
    assert not set(bg) & set(ex)
    assert set(index[ex, 0]) == set(range(6))
    bg2, ex2 = pipeline.select_windows(index, 100, 10, seed=0)
    assert (bg == bg2).all() and (ex == ex2).all()
    with pytest.raises(ConfigError, match="at least 1"):
        pipeline.select_windows(index, 0, 10)


def test_explain_run_writes_scores_chart_and_small_additivity_gap(run, explained):
    scores = pd.read_csv(explained / "scores.csv", comment="#")
    assert set(scores["model"]) == {"gru"}
    n_features = len(run.normaliser.dynamic_names) + len(run.normaliser.static_names)
    assert len(scores) == n_features
    assert scores["rank"].tolist() == list(range(1, n_features + 1))
    assert (scores["score"].diff().dropna() <= 1e-12).all()  # sorted, largest first
    assert set(scores["data"]) == {"test synthetic"}
    assert (explained / "shap_gru.png").stat().st_size > 5000
    gap = json.loads((explained / "additivity.json").read_text())
    g = gap["models"]["gru"]
    assert gap["data"] == "test synthetic" and gap["n_explained"] == 8
    assert g["relative_gap"] < 0.25, g


def test_scores_recomputed_from_saved_attributions(explained):
    ds = xr.open_dataset(explained / "attributions_gru.nc")
    assert ds.attrs[schema.DATA_LABEL_ATTR] == "test synthetic"
    t2m = float(np.abs(ds["dynamic"].sel(feature="t2m")).sum("step").mean("sample")
                .sel(layer="stl1"))
    scores = pd.read_csv(explained / "scores.csv", comment="#").set_index("feature")
    assert scores.loc["t2m", "score_stl1"] == pytest.approx(t2m, rel=1e-5)
    # test windows only
    assert (pd.DatetimeIndex(ds["target_month"].values).year >= 2019).all()
    ds.close()
