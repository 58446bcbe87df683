"""Gridded mode: the same training and evaluation code on a ``cell`` dim with a band coordinate."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from test_training_table import synthetic_table

from permaplug.training.config import RunConfig
from permaplug.training.runs import execute_run, load_run


def test_a_gridded_table_trains_and_reports_per_band(tmp_path):
    torch.set_num_threads(1)
    bands = synthetic_table("2001-01", "2008-12", n_bands=4, label="synthetic grid")
    cells = bands.rename({"band": "cell"}).drop_vars(["lat_min", "lat_max"])
    cells = cells.assign_coords(cell=np.arange(4), band=("cell", np.array([2, 2, 3, 5])),
                                lat=("cell", [64.0, 64.5, 66.0, 70.0]))
    cfg = RunConfig(models=["gru"], epochs=1, train_years=[2001, 2006], test_years=[2007, 2008],
                    hparams={"gru": {"hidden_size": 8}})
    out = execute_run(cfg, tmp_path / "grid", table=cells, progress=False, echo=lambda s: None)
    pred = pd.read_parquet(out / "predictions.parquet")
    assert list(pred.columns) == ["time", "cell", "band", "layer", "observed", "predicted",
                                  "model"]
    assert sorted(pred.loc[pred["cell"] == 1, "band"].unique()) == [2]
    metrics = json.loads((out / "metrics.json").read_text())["models"]["gru"]
    assert set(metrics["per_band"]) == {"2", "3", "5"}
    assert metrics["per_band"]["2"]["n"] == 2 * 24 * 4  # two cells x 24 months x 4 layers
    run = load_run(out)
    da = run.predict("gru", cells, pd.date_range("2008-01", "2008-03", freq="MS"))
    assert da.dims == ("time", "cell", "layer")
    assert da["band"].values.tolist() == [2, 2, 3, 5]
    sub = pred[(pred["model"] == "gru") & (pred["time"] == "2008-02-01") & (pred["cell"] == 3)]
    np.testing.assert_allclose(da.sel(time="2008-02-01", cell=3).values,
                               sub.sort_values("layer")["predicted"].to_numpy(), rtol=1e-5)
