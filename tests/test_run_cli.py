"""``permaplug run``: the run folder holds every output; errors are one line; resume; reload."""
from __future__ import annotations

import json

import click
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml
from click.testing import CliRunner
from test_training_table import synthetic_table

from permaplug.cli import cli
from permaplug.core import schema
from permaplug.data import features as F
from permaplug.training import runs
from permaplug.training.runs import load_run

SMALL = ["--train-years", "2001-2007", "--test-years", "2008-2010", "--epochs", "2",
         "--no-project", "--no-explain", "--no-report", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def small_table(tmp_path_factory):
    """The CLI reads this table instead of a catalog (and never the real user cache)."""
    table = synthetic_table("2001-01", "2010-12", n_bands=3, label="synthetic CLI table")
    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(runs, "load_table", lambda source, catalog, spatial="bands", features=None: table)
        yield table
    torch.set_num_threads(before)


def _run(*args):
    return CliRunner().invoke(cli, ["run", *args], catch_exceptions=False)


GRU_ARGS = ("--model", "gru", "--hparam", "hidden_size=16", *SMALL)


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gru") / "run"
    res = _run(*GRU_ARGS, "--out", str(out))
    assert res.exit_code == 0, res.output
    return out, res


def test_run_writes_every_output(gru_run):
    out, res = gru_run
    assert "Run written to" in res.output and "data: synthetic CLI table" in res.output
    for rel in ["config.yaml", "metrics.json", "predictions.parquet", "comparison.md",
                "comparison.csv", "figures/observed_vs_predicted.png", "figures/loss_curves.png",
                "COMPLETE"]:
        assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel
    for model in ["gru", "persistence", "climatology", "seasonal-naive", "linear"]:
        for f in ["model.pt", "config.json", "normaliser.json"]:
            assert (out / "checkpoints" / model / f).is_file(), (model, f)
    assert not (out / "checkpoints" / "gru" / "state.pt").exists()
    assert not list(out.rglob(".*"))  # no temporary leftovers
    png = (out / "figures" / "observed_vs_predicted.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_predictions_and_table_agree(gru_run):
    out, _ = gru_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "synthetic CLI table"
    assert set(metrics["models"]) == {"gru", "persistence", "climatology", "seasonal-naive",
                                      "linear"}
    gru = metrics["models"]["gru"]
    assert gru["data"] == "synthetic CLI table" and gru["kind"] == "network"
    assert set(gru) >= {"overall", "per_layer", "per_band", "per_band_layer"}
    pred = pd.read_parquet(out / "predictions.parquet")
    assert list(pred.columns) == ["time", "band", "layer", "observed", "predicted", "model"]
    assert len(pred) == 5 * 3 * 36 * 4  # models x bands x test months x layers
    assert pd.DatetimeIndex(pred["time"]).year.min() == 2008
    sub = pred[pred["model"] == "gru"]
    rmse = float(np.sqrt(((sub["predicted"] - sub["observed"]) ** 2).mean()))
    assert gru["overall"]["rmse"] == pytest.approx(rmse, rel=1e-9)
    persistence = pred[pred["model"] == "persistence"].set_index(["time", "band", "layer"])
    # persistence for 2008-02 is the observation of 2008-01
    a = persistence.loc[(pd.Timestamp("2008-02-01"), 1, "stl1"), "predicted"]
    b = persistence.loc[(pd.Timestamp("2008-01-01"), 1, "stl1"), "observed"]
    assert a == pytest.approx(b)
    text = (out / "comparison.md").read_text()
    assert "data: synthetic CLI table" in text and f"{gru['overall']['rmse']:.3f}" in text
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["epochs"] == 2 and cfg["hparams"] == {"gru": {"hidden_size": 16}}
    assert cfg["resolved"]["data"] == "synthetic CLI table"
    assert "z" in cfg["resolved"]["dynamic_features"]


def test_load_run_predicts_what_the_run_evaluated(gru_run, small_table):
    out, _ = gru_run
    run = load_run(out)
    assert run.model_names == ["gru", "persistence", "climatology", "seasonal-naive", "linear"]
    assert run.network_names == ["gru"]
    assert run.normaliser.train_years == [2001, 2007]
    z_state = run.normaliser.extra["feature_states"]["z"]  # the z plugin's training statistics
    assert set(z_state) == {"mean", "std", "window"} and z_state["std"] > 0
    months = pd.date_range("2008-01", "2010-12", freq="MS")
    da = run.predict("gru", small_table, months)
    assert da.dims == ("time", "band", "layer") and da.attrs["units"] == "degC"
    assert da.attrs[schema.DATA_LABEL_ATTR] == "synthetic CLI table"
    pred = pd.read_parquet(out / "predictions.parquet")
    pred = pred[pred["model"] == "gru"].set_index(["time", "band", "layer"])["predicted"]
    got = da.to_series().reorder_levels(["time", "band", "layer"])
    np.testing.assert_allclose(got.loc[pred.index].to_numpy(), pred.to_numpy(), rtol=1e-5)


def test_predict_on_a_scenario_table_without_soil_temperatures(gru_run, small_table):
    out, _ = gru_run
    run = load_run(out)
    hist = small_table.drop_vars(list(schema.TARGETS))
    scen = xr.concat([hist, hist], dim=pd.Index(["rcp45", "rcp85"], name="scenario"))
    scen["t2m"] = scen["t2m"] + xr.DataArray([0.0, 6.0], dims="scenario")
    da = run.predict("gru", scen, pd.date_range("2010-01", "2011-01", freq="MS"))
    assert da.dims == ("scenario", "time", "band", "layer")
    assert da.sizes == {"scenario": 2, "time": 13, "band": 3, "layer": 4}
    assert np.isfinite(da).all()
    assert float(da.sel(scenario="rcp85").mean()) != float(da.sel(scenario="rcp45").mean())
    clim = run.predict("climatology", hist, pd.date_range("2010-01", "2010-12", freq="MS"))
    np.testing.assert_allclose(clim.isel(band=0, layer=0).values,
                               run.load_model("climatology").clim[0, :, 0].numpy(), rtol=1e-6)


def test_same_seed_gives_the_same_metrics(gru_run, tmp_path):
    a, b = gru_run[0], tmp_path / "b"
    assert _run(*GRU_ARGS, "--out", str(b)).exit_code == 0
    ma = json.loads((a / "metrics.json").read_text())["models"]
    mb = json.loads((b / "metrics.json").read_text())["models"]
    for m in ma:
        ma[m].pop("train_seconds"), mb[m].pop("train_seconds")
    assert ma == mb


def test_resume_reuses_finished_checkpoints(gru_run):
    out, _ = gru_run
    before = (out / "checkpoints" / "gru" / "model.pt").read_bytes()
    metrics = json.loads((out / "metrics.json").read_text())
    res = _run("--out", str(out), "--resume", "--no-project", "--no-explain", "--no-report",
               "--quiet")
    assert res.exit_code == 0, res.output
    assert (out / "checkpoints" / "gru" / "model.pt").read_bytes() == before
    assert json.loads((out / "metrics.json").read_text())["models"]["gru"]["overall"] == \
        metrics["models"]["gru"]["overall"]
    assert (out / "COMPLETE").exists()
    res = _run("--out", str(out), "--resume", "--epochs", "7", "--no-project", "--no-explain",
               "--no-report")
    assert res.exit_code == 1 and "differs" in res.output


def test_config_file_and_command_line(tmp_path):
    conf = tmp_path / "run.yaml"
    conf.write_text(yaml.safe_dump({"models": ["bilstm"], "epochs": 1, "train_years": "2001-2007",
                                    "test_years": "2008-2010", "use_z": False,
                                    "hparams": {"bilstm": {"hidden_size": 8}}}))
    out = tmp_path / "r"
    res = _run("--config", str(conf), "--epochs", "2", "--out", str(out), "--no-project",
               "--no-explain", "--no-report", "--quiet", "--drop-feature", "year",
               "--drop-feature", "soc_l1")
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["epochs"] == 2 and cfg["models"] == ["bilstm"] and cfg["use_z"] is False
    assert cfg["drop_features"] == ["year", "soc_l1"]
    assert cfg["resolved"]["dynamic_features"] == [f for f in F.PAPER_DYNAMIC
                                                   if f != "year"]
    assert "soc_l1" not in cfg["resolved"]["static_features"]
    assert "soc_l2" in cfg["resolved"]["static_features"]
    assert cfg["hparams"]["bilstm"] == {"hidden_size": 8}
    hist = json.loads((out / "checkpoints" / "bilstm" / "history.json").read_text())
    assert len(hist["train"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--model", "gruu"], "Unknown model: 'gruu' (did you mean 'gru'?)"),
    (["--train-years", "2001-2009"], "overlap"),
    (["--train-years", "20x1"], "--train-years"),
    (["--hparam", "bogus=1", "--model", "gru"], "bogus"),
    (["--hparam", "tcn.hidden_size=3", "--model", "tcn"], "no hyper-parameter"),
    (["--early-stopping", "3"], "--val-fraction"),
    (["--resume"], "not a run folder"),
    (["--drop-feature", "t3m"], "--drop-feature 't3m'"),
])
def test_bad_options_are_one_line_errors(args, message, tmp_path):
    base = [a for a in SMALL if a not in ("--epochs", "2")]
    res = _run(*base, "--out", str(tmp_path / "x"), *args)
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("Error: ") and message in lines[-1], res.output
    assert not (tmp_path / "x" / "COMPLETE").exists()


def test_refuses_to_overwrite_a_run_folder(gru_run):
    out, _ = gru_run
    res = _run("--model", "gru", "--out", str(out), *SMALL)
    assert res.exit_code == 1 and "not empty" in res.output


def test_default_steps_need_their_modules_or_say_so(tmp_path, monkeypatch):
    import permaplug.commands.run as run_cmd

    monkeypatch.setitem(run_cmd._STEPS, "explain", ("permaplug.no_such_module", "explain_run"))
    res = _run("--model", "gru", "--out", str(tmp_path / "y"), "--no-project", "--no-report")
    assert res.exit_code == 1 and "--no-explain" in res.output
    assert not (tmp_path / "y").exists()  # checked before any training


def test_post_training_steps_run_in_order_before_the_complete_marker(tmp_path, monkeypatch):
    import permaplug.commands.run as run_cmd

    out = tmp_path / "steps"
    calls = []

    def fake(name):
        def step(*args, **kwargs):
            assert (out / "metrics.json").exists() and not (out / "COMPLETE").exists()
            calls.append((name, args, kwargs))
            return out / name
        return step

    monkeypatch.setattr(run_cmd, "_step", fake)
    from permaplug.commands import alongside  # explained here, after the projection

    monkeypatch.setattr(alongside, "can_explain_alongside", lambda device, threads: False)
    res = _run("--model", "gru", "--hparam", "hidden_size=8", "--out", str(out), "--epochs", "1",
               "--train-years", "2001-2007", "--test-years", "2008-2010", "--quiet",
               "--scenarios", "rcp45,rcp85", "--end", "2040",
               "--corrector-option", "preserve_order=true")
    assert res.exit_code == 0, res.output
    assert [c[0] for c in calls] == ["project", "explain", "report"]
    assert calls[0][1] == (out, None, ["rcp45", "rcp85"], "qm", 2040)
    assert callable(calls[0][2].pop("prefetched"))  # what was computed while training
    assert calls[0][2].pop("on_inputs") is None  # no explanation alongside
    assert calls[0][2] == {"corrector_options": {"preserve_order": True}, "continuation": None,
                           "scenario_pair": None, "progress": False, "echo": click.echo}
    assert calls[1][1] == (out, "shap") and calls[1][2] == {"progress": False}
    assert calls[2][1] == ([out], out / "report.html")
    assert (out / "COMPLETE").read_text().split()[1:] == ["train", "evaluate", "project",
                                                         "explain", "report"]



def test_the_explanation_runs_forked_alongside_the_projection(tmp_path, monkeypatch):
    import os

    import permaplug.commands.run as run_cmd

    out = tmp_path / "alongside"

    def project(run_dir, *args, on_inputs=None, **kwargs):
        folder = run_dir / "projections" / "qm-2040"
        folder.mkdir(parents=True)
        on_inputs(folder, ("rcp45", "rcp85"))  # the child may start the scenario windows
        (run_dir / "projected").write_text(str(os.getpid()))
        return folder / "projections.nc"

    def explain(run_dir, explainer, progress=True, wait_projection=None):
        fresh = wait_projection()  # in the child: returns once the projection said so
        (run_dir / "explained").write_text(json.dumps([os.getpid(), fresh, progress]))
        return run_dir / "explanations" / explainer

    steps = {"project": project, "explain": explain, "report": lambda runs, path: path}
    monkeypatch.setattr(run_cmd, "_step", lambda name: steps[name])
    res = _run("--model", "gru", "--hparam", "hidden_size=8", "--out", str(out), "--epochs", "1",
               "--train-years", "2001-2007", "--test-years", "2008-2010", "--quiet")
    assert res.exit_code == 0, res.output
    pid, fresh, progress = json.loads((out / "explained").read_text())
    assert pid not in (os.getpid(), int((out / "projected").read_text()))  # a forked child
    assert fresh == ["qm-2040", ["rcp45", "rcp85"]] and progress is False
    assert f"Explanations written to {out / 'explanations' / 'shap'}" in res.output
    assert (out / "COMPLETE").read_text().split()[1:] == ["train", "evaluate", "project",
                                                          "explain", "report"]

def test_a_bad_corrector_option_fails_before_training(tmp_path):
    out = tmp_path / "run"
    res = _run("--model", "gru", "--corrector-option", "preserve_ordr=true", "--out", str(out),
               "--quiet")
    assert res.exit_code == 1
    assert "unknown option(s) preserve_ordr" in res.output and "Traceback" not in res.output
    assert not out.exists()
