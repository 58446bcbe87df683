"""corrected_scenarios / correct_dataset and the report, on synthetic canonical datasets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import ConfigError, DataError
from permaplug.correction.evaluate import bias_table, ks_distance, spread_table
from permaplug.correction.pipeline import (
    Correction,
    correct_dataset,
    corrected_scenarios,
    drop_units_without_reference,
    parse_calibration,
)
from permaplug.correction.report import build_report, write_report
from permaplug.data import features as F

N_BANDS = 3


def _var(rng, t, name: str, model: bool, warming: float) -> np.ndarray:
    """A plausible monthly series for any canonical forcing (model: biased, with a trend)."""
    m = t.month.values[:, None]
    seas = np.cos(2 * np.pi * (m - 1) / 12)
    trend = warming * (t.year.values[:, None] - 2001) / 100
    noise = rng.standard_normal((t.size, N_BANDS))
    if name in ("tp", "sf"):
        x = rng.gamma(2.0, (25.0 if model else 15.0) * (1 + trend / 10), (t.size, N_BANDS))
        return np.where(x < 2.0, 0.0, x)
    if name in ("t2m", "skt"):
        return -15 * seas + (3.0 if model else 0.0) + trend + 2 * noise
    scale = {"strd": 3e8, "ssrd": 2e8, "slhf": 3e7, "sshf": 3e7}[name]
    return scale * (2 - seas) + (0.2 * scale if model else 0.0) + 0.1 * scale * (trend + noise)


def synthetic(seed: int = 0) -> tuple[xr.Dataset, xr.Dataset]:
    """Model scenarios 2001-2060 (with mrso, mrsos) and a 2001-2023 reanalysis (with swvl)."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2001-01-01", "2060-12-01", freq="MS")
    coords = {"time": t, **schema.band_coords()}
    coords["band"] = ("band", np.arange(N_BANDS))
    coords["lat_min"] = ("band", coords["lat_min"][1][:N_BANDS])
    coords["lat_max"] = ("band", coords["lat_max"][1][:N_BANDS])
    scen_vars = {}
    for v in F.PAPER_FORCING:
        scen_vars[v] = (("scenario", "time", "band"),
                        np.stack([_var(rng, t, v, True, w) for w in (1.0, 5.0)]),
                        schema.cf_attrs(v))
    mrso = 400 + 40 * np.sin(2 * np.pi * t.month.values / 12)[None, :, None] + \
        10 * rng.standard_normal((2, t.size, N_BANDS))
    scen_vars["mrso"] = (("scenario", "time", "band"), mrso, schema.cf_attrs("mrso"))
    scen_vars["mrsos"] = (("scenario", "time", "band"), mrso / 40, schema.cf_attrs("mrsos"))
    scen = xr.Dataset(scen_vars, coords={"scenario": ["rcp26", "rcp85"], **coords},
                      attrs={schema.DATA_LABEL_ATTR: "synthetic model", "historical_end": "2005-12"})
    obs_vars = {v: (("time", "band"), _var(rng, t, v, False, 1.0), schema.cf_attrs(v))
                for v in F.PAPER_FORCING}
    for i, base in enumerate((0.30, 0.28, 0.25, 0.22), 1):
        obs_vars[f"swvl{i}"] = (("time", "band"), np.clip(
            base + 0.05 * rng.standard_normal((t.size, N_BANDS)), 0.01, 0.6), schema.cf_attrs(f"swvl{i}"))
    obs = xr.Dataset(obs_vars, coords=coords,
                     attrs={schema.DATA_LABEL_ATTR: "synthetic reanalysis"}).sel(time=slice("2001", "2023"))
    return scen, obs


class FakeCatalog:
    """The two catalog methods corrected_scenarios uses (the real catalog is tested elsewhere)."""

    def __init__(self, scen: xr.Dataset, obs: xr.Dataset) -> None:
        self.data = {"ipsl": scen, "era": obs}
        self.asked: list[tuple[str, str | None]] = []

    def find(self, role: str, source: str | None = None) -> str:
        self.asked.append((role, source))
        return {"scenario": "ipsl", "reanalysis": "era"}[role]

    def open(self, name: str) -> xr.Dataset:
        return self.data[name].copy()


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def qm_result(data):
    scen, obs = data
    return correct_dataset(scen, obs, "qm", (2001, 2023), ["t2m", "tp", "strd"], "rcp85")


def test_corrected_scenarios_returns_all_canonical_features(data):
    scen, obs = data
    cat = FakeCatalog(scen, obs)
    out, corr = corrected_scenarios(cat, "qm", calibration=(2001, 2023))
    assert ("scenario", "cmip") in cat.asked and ("reanalysis", None) in cat.asked
    assert set(out.data_vars) == set(F.PAPER_FORCING + schema.SOIL_WATER)
    for v in out.data_vars:
        assert out[v].dims == ("scenario", "time", "band"), v
    np.testing.assert_array_equal(out.time.values, scen.time.values)
    assert out.attrs[schema.DATA_LABEL_ATTR] == "synthetic model"
    assert out.attrs["bias_correction"] == "qm"
    assert out.attrs["bias_correction_continuation"] == "rcp85"
    assert out.attrs["bias_correction_reference"] == "synthetic reanalysis"
    assert corr.name == "qm" and set(corr.fitted) == set(out.data_vars)
    # the soil water split from mrso/mrsos, then corrected to the reanalysis' layer values
    cal = out.sel(scenario="rcp85", time=slice("2001", "2023"))
    for i in range(1, 5):
        v = f"swvl{i}"
        assert abs(float(cal[v].mean() - obs[v].mean())) < 0.01, v
        assert 0.0 <= float(out[v].min()) and float(out[v].max()) <= 1.0
    assert float(out["tp"].min()) >= 0.0 and float(out["sf"].min()) >= 0.0


def test_corrected_scenarios_selects_scenarios_and_uses_given_obs(data):
    scen, obs = data
    out, _ = corrected_scenarios(FakeCatalog(scen, obs.isel(time=slice(0, 0))), "none",
                                 obs=obs, scenarios=["rcp26"])
    assert list(out.scenario.values) == ["rcp26"]
    np.testing.assert_array_equal(out["t2m"].values, scen["t2m"].sel(scenario=["rcp26"]).values)
    with pytest.raises(ConfigError, match="rcp99"):
        corrected_scenarios(FakeCatalog(scen, obs), "qm", scenarios=["rcp99"])


def test_correct_dataset_errors_name_the_option(data):
    scen, obs = data
    with pytest.raises(ConfigError, match="continuation scenario 'rcp45'"):
        correct_dataset(scen, obs, "qm", (2001, 2023), ["t2m"], "rcp45")
    with pytest.raises(DataError, match="'swvl1'"):
        correct_dataset(scen, obs, "qm", (2001, 2023), ["swvl1"], "rcp85")
    with pytest.raises(DataError, match="no month in the calibration period 1990-1995"):
        correct_dataset(scen, obs, "qm", (1990, 1995), ["t2m"], "rcp85")
    from permaplug.core.errors import UnknownPluginError
    with pytest.raises(UnknownPluginError, match="did you mean 'qdm'"):
        correct_dataset(scen, obs, "qdn", (2001, 2023), ["t2m"], "rcp85")
    assert parse_calibration("2001-2023") == (2001, 2023)
    for bad in ("2001", "2023-2001", "a-b"):
        with pytest.raises(ConfigError, match="--calibration"):
            parse_calibration(bad)


def test_units_without_reference_are_left_out(data):
    scen, obs = data
    holed = obs.copy()
    for v in ("t2m", "tp"):
        holed[v] = holed[v].where(holed.band != 0)
    s2, o2, dropped = drop_units_without_reference(scen, holed, ["t2m", "tp"], (2001, 2023))
    assert dropped == ["0"] and list(o2.band.values) == [1, 2] and list(s2.band.values) == [1, 2]
    assert drop_units_without_reference(scen, obs, ["t2m"], (2001, 2023))[2] == []


def test_bias_and_spread_tables_hold_the_right_numbers(data):
    scen, obs = data
    cal = slice("2001", "2023")
    raw_cal = scen.sel(scenario="rcp85", time=cal).drop_vars("scenario")
    bias = bias_table(obs, {"raw": raw_cal}, ["t2m"])
    row = bias[bias.unit == "1"].iloc[0]
    expect = float((raw_cal["t2m"].sel(band=1) - obs["t2m"].sel(band=1)).mean())
    assert row["bias_raw"] == pytest.approx(expect)
    assert row["ks_raw"] == pytest.approx(ks_distance(raw_cal["t2m"].sel(band=1).values,
                                                      obs["t2m"].sel(band=1).values))
    spread = spread_table({"raw": scen}, ["t2m", "tp"], periods=((2024, 2030), (2041, 2100)),
                          pair=("rcp26", "rcp85"))
    assert "2041-2060 raw" in spread.columns  # the years the data actually cover
    m = scen["t2m"].sel(time=slice("2024", "2030")).mean("time")
    expect = float((m.sel(scenario="rcp85") - m.sel(scenario="rcp26")).sel(band=2))
    got = spread[(spread.variable == "t2m") & (spread.unit == "2")]["2024-2030 raw"].item()
    assert got == pytest.approx(expect)
    assert "tp (relative)" in set(spread.variable)
    with pytest.raises(DataError, match="do not cover 2090-2100"):
        spread_table({"raw": scen}, ["t2m"], periods=((2090, 2100),), pair=("rcp26", "rcp85"))
    assert spread_table({"raw": scen}, ["t2m"], pair=None).empty  # one scenario: no spread


def test_report_shows_bias_removed_and_names_the_data(tmp_path, data, qm_result):
    scen, obs = data
    qdm = correct_dataset(scen, obs, "qdm", (2001, 2023), ["t2m", "tp", "strd"], "rcp85")
    rep = build_report(qm_result, {"qdm": qdm}, periods=((2024, 2030), (2041, 2060)))
    s = rep.summary.set_index("variable")
    for v in ("t2m", "tp", "strd"):
        assert s.loc[v, "abs bias qm"] < 0.05 * s.loc[v, "abs bias raw"], v
        assert s.loc[v, "KS qm"] < s.loc[v, "KS raw"], v
    assert {"spread 2041-2060 raw", "spread 2041-2060 qm", "spread 2041-2060 qdm"} <= set(s.columns)
    written = write_report(rep, qm_result, tmp_path, {"qdm": qdm})
    names = {p.name for p in written}
    assert names == {"bias.csv", "spread.csv", "summary.csv", "report.md",
                     "figure11_correction.png"}
    md = (tmp_path / "report.md").read_text()
    assert "data: synthetic model" in md and "reference: synthetic reanalysis" in md
    assert "historical run continued by rcp85" in md
    assert (tmp_path / "bias.csv").read_text().startswith("# data: synthetic model")
    back = pd.read_csv(tmp_path / "bias.csv", comment="#")
    np.testing.assert_allclose(back["bias_qm"], rep.bias["bias_qm"], rtol=1e-12)
    png = (tmp_path / "figure11_correction.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert not list(tmp_path.glob(".*"))  # no temporary leftovers


def test_correction_is_a_plain_record(qm_result):
    assert isinstance(qm_result, Correction)
    assert qm_result.variables == ["t2m", "tp", "strd"]
    assert qm_result.corrected["t2m"].dims == ("scenario", "time", "band")
