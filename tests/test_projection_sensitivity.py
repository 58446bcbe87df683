"""Climate sensitivity test: +dK on the air/skin temperature inputs, networks vs the emulator."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _projection_fixtures import hist_table, scenarios, tiny_run

from permaplug.core import schema
from permaplug.data.features import add_features
from permaplug.projection import rerun as rerun_hook
from permaplug.projection import sensitivity as S


class LinearRun:
    """A stand-in for a Run whose one network is linear in the window's air and skin
    temperature: layer ``l`` = ``a[l]`` x mean t2m + ``b`` x mean skt over the ``window``
    months before the target month."""

    def __init__(self, a=(0.8, 0.6, 0.4, 0.2), b=0.1, window=24, test_years=(2019, 2023)):
        self.network_names = ["lin"]
        self.a, self.b = np.asarray(a), b
        self.normaliser = SimpleNamespace(window=window)
        self.config = SimpleNamespace(test_years=list(test_years))

    def predict(self, name, table, months):
        time = pd.DatetimeIndex(table["time"].values)
        w = self.normaliser.window
        out = []
        for m in pd.DatetimeIndex(months):
            i = time.get_loc(m)
            sl = slice(i - w, i)
            t2m = table["t2m"].isel(time=sl).mean("time").values
            skt = table["skt"].isel(time=sl).mean("time").values
            out.append(self.a[None, :] * t2m[:, None] + self.b * skt[:, None])
        return xr.DataArray(np.stack(out), dims=("time", "band", "layer"),
                            coords={"time": pd.DatetimeIndex(months).values,
                                    "band": table["band"].values,
                                    "layer": list(schema.TARGETS)})


def _table() -> xr.Dataset:
    table = hist_table()
    table["skt"] = table["t2m"] + 1.0
    return table


def test_a_model_linear_in_t2m_gives_its_slope_times_dk():
    res = S.sensitivity(LinearRun(), _table(), progress=False)
    pooled = res.rows[res.rows["unit"] == "all"]
    assert set(pooled["delta_K"]) == {1.0, 3.0, 5.0}
    for r in pooled.itertuples():
        slope = LinearRun().a[schema.TARGETS.index(r.layer)] + 0.1
        assert r.response_degC == pytest.approx(slope * r.delta_K, rel=1e-9)
        assert r.period == "2019-2023" and r.base == "reanalysis (test years)"
    # every band sees the whole perturbation (the window months before the period too)
    per_unit = res.rows[(res.rows["unit"] != "all") & (res.rows["layer"] == "stl4")]
    np.testing.assert_allclose(per_unit["response_degC"], 0.3 * per_unit["delta_K"],
                               rtol=1e-9)
    assert res.notes == [("no emulator rows: the catalog is not a demo build, and nature has "
                          "no rerun")]


def test_perturbation_covers_the_window_before_the_period_and_nothing_else():
    table = _table()
    first, last = pd.Timestamp("2017-01-01"), pd.Timestamp("2023-12-01")
    warm = S.perturb(table, 3.0, first, last)
    diff = (warm["t2m"] - table["t2m"]).mean("band").to_series()
    np.testing.assert_allclose(diff[first:last], 3.0)
    assert (diff[:"2016-12"] == 0).all()
    assert float((warm["skt"] - table["skt"]).sel(time="2020-06").max()) == pytest.approx(3.0)
    assert float(abs(warm["tp"] - table["tp"]).max()) == 0.0


def test_features_derived_from_t2m_are_recomputed_from_the_perturbed_air():
    table = _table()
    table["tp"] = xr.full_like(table["t2m"], 30.0)  # mm per month
    table, _ = add_features(table, ["tdd", "snowfall_t"])
    warm = S.perturb(table, 5.0, pd.Timestamp("2001-01-01"), pd.Timestamp("2023-12-01"))
    assert "tdd" not in warm and "snowfall_t" not in warm  # dropped: the run recomputes them
    again, _ = add_features(warm, ["tdd", "snowfall_t"])
    assert float((again["tdd"] - table["tdd"]).mean()) > 0
    assert float((again["snowfall_t"] - table["snowfall_t"]).mean()) < 0


def test_a_period_the_table_does_not_cover_is_skipped_with_a_note():
    res = S.sensitivity(LinearRun(test_years=(2001, 2002)), _table(), progress=False)
    assert res.rows.empty and "2001-2002" in res.notes[0] and "skipped" in res.notes[0]
    res = S.sensitivity(LinearRun(), _table().drop_vars(["t2m", "skt"]), progress=False)
    assert res.rows.empty and "has none of t2m, skt to warm: skipped" in res.notes[0]


def test_emulator_rerun_base_equals_the_stored_demo_data(demo_catalog):
    from permaplug.core.catalog import load_catalog
    from permaplug.demo.sensitivity import rerun

    cat = load_catalog(str(demo_catalog))
    table = cat.open("era5land")
    truth = cat.open("truth-rcp85")
    runs = rerun(cat.metadata, [(2019, 2023, None), (2071, 2100, "rcp85")], 24,
                 progress=False)
    assert list(runs) == ["2019-2023", "2071-2100"]
    for label, stored in (("2019-2023", table), ("2071-2100", truth)):
        base = runs[label].sel(delta_K=0.0)
        assert base.sizes["time"] == 12 * (int(label[5:]) - int(label[:4]) + 1)
        for layer in schema.TARGETS:
            ref = stored[layer].sel(time=base["time"].values).transpose("time", "band")
            np.testing.assert_allclose(base.sel(layer=layer).values, ref.values, atol=1e-3)
        resp = S.emulator_responses(runs[label]).sel(source="emulator", layer="stl1").mean("band")
        # the emulator's soil warms, less than the air, more with more warming
        assert 0.3 < float(resp.sel(delta_K=1.0)) < 1.0
        assert float(resp.sel(delta_K=1.0)) < float(resp.sel(delta_K=5.0)) < 5.0


def test_emulator_rows_and_the_measured_base_check(demo_catalog, monkeypatch):
    from permaplug.core.catalog import load_catalog
    from permaplug.demo.sensitivity import rerun

    monkeypatch.setattr(rerun_hook, "_RERUN", [rerun])
    cat = load_catalog(str(demo_catalog))
    table = cat.open("era5land")
    table["skt"] = table["t2m"]
    res = S.sensitivity(LinearRun(), table, metadata=cat.metadata, progress=False)
    emu = res.rows[(res.rows["source"] == "emulator") & (res.rows["unit"] == "all")]
    assert len(emu) == 3 * 4 and set(emu["period"]) == {"2019-2023"}
    assert res.emulator_check_degC["2019-2023"] < 1e-3
    wide = S.pooled_table(res.rows)
    assert list(wide.columns) == ["period", "delta_K", "layer", "lin (degC)",
                                  "emulator (degC)", "lin / emulator"]
    np.testing.assert_allclose(wide["lin / emulator"],
                               wide["lin (degC)"] / wide["emulator (degC)"])
    assert any("reproduces the stored band means within" in n for n in res.notes)


def test_no_emulator_without_the_hook_says_so(demo_catalog, monkeypatch):
    from permaplug.core.catalog import load_catalog

    monkeypatch.setattr(rerun_hook, "_RERUN", [None])
    res = S.sensitivity(LinearRun(), _table(),
                        metadata=load_catalog(str(demo_catalog)).metadata, progress=False)
    assert "emulator" not in set(res.rows["source"])
    assert "no emulator rerun was handed down" in res.notes[0]


def test_write_projections_writes_the_table_figure_and_summary(tmp_path_factory):
    import json

    from permaplug.projection.pipeline import write_projections

    run = tiny_run(tmp_path_factory.mktemp("tinyrun"))
    table = hist_table(start="2013-01-01")
    nc = write_projections(run, table, scenarios(end="2100-12-01"), "qm", 2100,
                           progress=False)
    out = nc.parent
    lines = (out / "sensitivity.csv").read_text().splitlines()
    assert lines[0] == "# data: test synthetic"
    assert lines[1].startswith("# note: no emulator rows: the catalog is not a demo build")
    rows, notes = S.read_sensitivity(out / "sensitivity.csv")
    assert list(rows.columns) == [*S.COLUMNS, "data"] and notes
    assert set(rows["source"]) == {"gru"} and set(rows["period"]) == {"2019-2023", "2071-2100"}
    assert set(rows["unit"]) == {*map(str, range(schema.N_BANDS)), "all"}
    future = rows[rows["period"] == "2071-2100"]
    assert set(future["base"]) == {"rcp85 corrected (bias-corrected; no truth forcing)"}
    assert np.isfinite(rows["response_degC"]).all()
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())["sensitivity"]
    assert "gru|2071-2100|stl1" in summary["response_5K_degC"]
    wide = S.pooled_table(rows)
    assert list(wide.columns) == ["period", "delta_K", "layer", "gru (degC)"]
    assert len(wide) == 2 * 3 * 4
    assert S.base_lines(rows) == [
        "2019-2023: gru on reanalysis (test years)",
        "2071-2100: gru on rcp85 corrected (bias-corrected; no truth forcing)"]


def test_a_demo_folder_that_does_not_match_its_catalog_gives_a_note(demo_catalog, monkeypatch):
    from permaplug.core.catalog import load_catalog
    from permaplug.demo.sensitivity import rerun

    monkeypatch.setattr(rerun_hook, "_RERUN", [rerun])
    meta = {**load_catalog(str(demo_catalog)).metadata, "land_cells": 7}
    res = S.sensitivity(LinearRun(), _table(), metadata=meta, progress=False)
    assert "emulator" not in set(res.rows["source"]) and set(res.rows["source"]) == {"lin"}
    assert res.notes[-1].startswith("no emulator rows: demo grid at 1.5 deg has")
    assert "the catalog says 7" in res.notes[-1]


def test_the_late_century_base_is_the_highest_scenarios_truth_forcing_when_there_is_one():
    scen = scenarios(end="2100-12-01", warming={"rcp85": 0.1, "rcp26": 0.0, "rcp45": 0.05})
    marker = xr.Dataset(attrs={"what": "truth continuation"})
    fut, base, high = S.future_base_table(LinearRun(), _table(), scen, 2100,
                                          {"rcp85": marker, "rcp26": xr.Dataset()})
    assert fut is marker and base == "rcp85 truth forcing" and high == "rcp85"
    assert S.future_base_table(LinearRun(), _table(), scen, 2030) == (None, "", None)


@pytest.mark.parametrize("sources", [["tcn"], ["gru", "lstm", "tcn", "transformer", "a_long_model_name"]])
def test_sensitivity_figure_keeps_every_text_inside_the_canvas(tmp_path, monkeypatch, sources):
    """Saved as laid out (no second, tight-bbox render): title, legend and labels inside."""
    import matplotlib.pyplot as plt

    from permaplug.projection import sensitivity_figure as SF

    checked = []
    real_close = plt.close

    def check_then_close(fig):
        fig.canvas.draw()
        tight, (w, h) = fig.get_tightbbox(fig.canvas.get_renderer()), fig.get_size_inches()
        assert tight.x0 >= -0.02 and tight.y0 >= -0.02 and tight.x1 <= w + 0.02 \
            and tight.y1 <= h + 0.02, f"{tight} outside 0..{w} x 0..{h}"
        legend_texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        checked.append(legend_texts)
        real_close(fig)

    monkeypatch.setattr(SF.plt, "close", check_then_close)
    rows = pd.DataFrame([
        {"source": src, "period": period, "base": "b", "delta_K": dk, "layer": layer,
         "unit": "all", "response_degC": 0.5 * dk}
        for src in [*sources, SF.EMULATOR] for period in ("2019-2023", "2071-2100")
        for layer in schema.TARGETS for dk in (1.0, 3.0, 5.0)])
    SF.sensitivity_figure(rows, "test synthetic", tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0
    assert checked == [["1:1", *sources, SF.EMULATOR]]
