"""The emulator's parameter sets, the Toolik observation reader, scores and calibration pieces."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core.errors import ConfigError, DataError
from permaplug.demo import calibrate as C
from permaplug.demo import heat
from permaplug.demo.params import RANGES, VERSIONS, EmulatorParams, params_for
from permaplug.demo.soil import add_organic_layer, soil_from_statics, static_fields


def _edc_file(tmp_path, rows: list[tuple[str, int, float | None]], gz: bool = True):
    """An EDC 3-hour export (the real header and layout) with the same value at every depth."""
    lines = ['"date","hour","soil1_moss","soil1_5cm","soil1_10cm","soil1_100cm"']
    for date, hour, value in rows:
        v = "" if value is None else f"{value}"
        lines.append(f"{date},{hour},{v},{v},{v},{v}")
    text = "\n".join(lines) + "\n"
    path = tmp_path / ("edc.csv.gz" if gz else "edc.csv")
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _month_rows(year: int, month: int, value: float, keep: float = 1.0):
    days = pd.Period(f"{year}-{month:02d}").days_in_month
    rows = []
    for d in range(1, days + 1):
        for h in range(300, 2700, 300):
            rows.append((f"{year}-{month:02d}-{d:02d}", h, value))
    n_keep = round(keep * len(rows))
    return [(dt, h, v if i < n_keep else None) for i, (dt, h, v) in enumerate(rows)]


def test_edc_monthly_means_need_80_percent(tmp_path):
    rows = _month_rows(2001, 1, -10.0) + _month_rows(2001, 2, -12.0, keep=0.79) \
        + _month_rows(2001, 3, 2.0, keep=0.81)
    obs = C.read_edc_monthly(_edc_file(tmp_path, rows))
    assert list(obs.columns) == [0, 5, 10, 100]
    assert obs.loc["2001-01-01", 0] == pytest.approx(-10.0)
    assert np.isnan(obs.loc["2001-02-01", 5])  # 79 % of the readings: missing, not filled
    assert obs.loc["2001-03-01", 100] == pytest.approx(2.0)
    # the coverage threshold is configurable
    assert obs.equals(C.read_edc_monthly(_edc_file(tmp_path, rows, gz=False)))
    assert C.read_edc_monthly(_edc_file(tmp_path, rows), min_coverage=0.7).loc[
        "2001-02-01", 0] == pytest.approx(-12.0)


def test_edc_hourly_periods_expect_24_readings_a_day(tmp_path):
    rows = []
    days = 30
    for d in range(1, days + 1):  # hourly readings: 24 a day, all there
        for h in range(100, 2500, 100):
            rows.append((f"2005-06-{d:02d}", h, float(h >= 1300)))
    obs = C.read_edc_monthly(_edc_file(tmp_path, rows))
    assert obs.loc["2005-06-01", 10] == pytest.approx(0.5)  # hours 13..24 read 1


def test_edc_wrong_layout_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,hour,temp\n2001-01-01,300,1\n")
    with pytest.raises(DataError, match="bad.csv.*soil1_moss"):
        C.read_edc_monthly(bad)
    with pytest.raises(DataError, match="nothing.csv: file not found"):
        C.read_edc_monthly(tmp_path / "nothing.csv")


def test_version_1_parameters_are_the_original_emulator():
    p = params_for("1")
    assert (p.snow_density_taiga, p.snow_density_tundra, p.snow_k_factor) == (300.0, 380.0, 1.0)
    assert (p.n_thaw_mineral, p.n_thaw_organic, p.organic_thickness, p.ddf) == (
        1.05, 0.45, 0.0, 3.0)
    assert np.allclose(p.snow_density(np.array([60.0, 68.0, 71.0])), [300.0, 340.0, 380.0])
    with pytest.raises(ConfigError, match="unknown demo version '9'"):
        params_for("9")
    with pytest.raises(ConfigError, match="unknown emulator parameter"):
        p.with_values(snow_colour=1.0)


def test_calibrated_versions_stay_inside_published_ranges():
    for version, p in VERSIONS.items():
        for name, (lo, hi, source) in RANGES.items():
            assert lo <= getattr(p, name) <= hi, (version, name)
            assert source


def test_organic_layer_replaces_the_top_volumes():
    fields = static_fields(np.array([68.6, 65.0]), np.array([-149.6, -150.0]), seed=0)
    base = soil_from_statics(fields, EmulatorParams()).column
    assert add_organic_layer(base, EmulatorParams()) is base
    p = EmulatorParams(organic_thickness=0.07, k_organic_thawed=0.2, k_organic_frozen=0.9)
    col = soil_from_statics(fields, p).column
    assert np.allclose(col.k_thawed[:2], 0.2) and np.allclose(col.k_frozen[:2], 0.9)
    assert np.allclose(col.k_thawed[2:], base.k_thawed[2:])
    # half of the 0.07-0.15 m volume: series conductivity, mixed water
    half = soil_from_statics(fields, p.with_values(organic_thickness=0.11)).column
    expect = 1 / (0.5 / base.k_thawed[2] + 0.5 / 0.2)
    assert np.allclose(half.k_thawed[2], expect)
    assert np.allclose(half.theta[2], 0.5 * base.theta[2] + 0.5 * p.organic_theta)
    # per-cell arrays: one parameter set per column
    two = soil_from_statics(fields, p.with_values(organic_thickness=np.array([0.0, 0.07]))).column
    assert np.allclose(two.k_thawed[:, 0], base.k_thawed[:, 0])
    assert np.allclose(two.k_thawed[:2, 1], 0.2)


def test_sensor_weights_interpolate_the_profile():
    w = C.sensor_weights(heat.FACES)
    z = np.concatenate([[0.0], 0.5 * (heat.FACES[1:] + heat.FACES[:-1])])
    assert np.allclose(w.sum(axis=1), 1.0)
    profile = 3.0 - 2.0 * z  # linear in depth: interpolation is exact
    assert np.allclose(w @ profile, 3.0 - 2.0 * np.array(C.SENSOR_DEPTHS_CM) / 100.0)
    assert w[0, 0] == 1.0  # 0 cm is the surface face


def test_climatology_scores_bias_rmse_and_missing_months():
    time = pd.date_range("1990-01-01", "1991-12-01", freq="MS")
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({d: rng.normal(-5, 8, time.size) for d in (0, 100)}, index=time)
    obs.loc["1990-07-01", 0] = np.nan
    offset = np.where(time.month <= 6, 1.0, 3.0)
    sim = pd.Series(np.stack([obs[0] + offset, obs[100] - 2.0], axis=1).ravel(),
                    index=pd.MultiIndex.from_product([time, [0, 100]]))
    sim.index.names = ["time", "depth_cm"]
    sim.loc[(pd.Timestamp("1990-07-01"), 0)] = 99.0  # an unobserved month never counts
    s0, s100 = C.climatology_scores(sim, obs, (1990, 1991))
    assert (s0.depth_cm, s0.months, s100.months) == (0, 23, 24)
    assert s0.bias == pytest.approx(2.0) and s0.rmse == pytest.approx(np.sqrt(5.0))
    assert s0.max_abs == pytest.approx(3.0)
    assert s100.bias == pytest.approx(-2.0) and s100.rmse == pytest.approx(2.0)
    frame = pd.DataFrame({0: sim, 1: sim + 1.0})
    obj = C.objective(frame, obs, (1990, 1991))
    assert obj[1] != obj[0]


def test_toolik_forcing_is_the_real_point():
    f = C.toolik_forcing()
    assert f.t2m.shape == (f.time.size, 1) and f.time[0] == pd.Timestamp("1940-01-01")
    ann = f.sel("1991-01", "2020-12").t2m.mean()
    assert -12.0 < ann < -7.0  # the real ERA5 Toolik point: about -10 degC


def test_demo_version_catalog_names(tmp_path, monkeypatch):
    from permaplug.demo.build import demo_catalog_names, demo_dir

    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path))
    assert demo_catalog_names()["demo-v1"] == "1"
    assert demo_dir("1") == tmp_path / "demo-v1"
    res = CliRunner().invoke(cli, ["demo", "path", "--version", "1"])
    assert res.exit_code == 0 and res.output.strip() == str(tmp_path / "demo-v1" / "catalog.yaml")
    res = CliRunner().invoke(cli, ["demo", "path", "--version", "7"])
    assert res.exit_code != 0 and "unknown demo version '7'" in res.output
    assert "Traceback" not in res.output


def test_cli_score_bad_observation_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,hour,temp\n2001-01-01,300,1\n")
    res = CliRunner().invoke(cli, ["demo", "score", "--obs", str(bad)])
    assert res.exit_code != 0 and "soil1_moss" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["demo", "calibrate", "--obs", str(bad), "--maxiter", "0"])
    assert res.exit_code != 0 and "--maxiter" in res.output


@pytest.mark.slow
def test_calibration_moves_toward_synthetic_truth():
    """Observations made by the emulator itself with version 2's parameters: one generation
    from version 1 must already cut the objective, and the truth scores ~0."""
    truth = params_for("2")
    sim = C.run_toolik([truth], start="2005-01", end="2008-12", steps_per_month=2)
    obs = sim[0].unstack()
    years = (2005, 2008)
    assert C.objective(C.run_toolik([truth], start="2005-01", end="2008-12", steps_per_month=2),
                       obs, years)[0] < 1e-6
    cal = C.calibrate(obs, start=params_for("1"), maxiter=1, popsize=2, years=years,
                      steps_per_month=2)
    assert cal.objective_after < 0.5 * cal.objective_before
    assert cal.columns <= (1 + 1) * 2 * len(C.CALIBRATED) + 1  # the stated budget


def test_calibrated_version_is_closer_to_the_real_toolik_record():
    """The bundled real record: version 2 removes version 1's 5-6 K cold bias at every depth
    (numbers in docs/demo-data.md)."""
    obs = C.read_edc_monthly(C.bundled_record())
    assert obs.notna().sum().to_dict() == {0: 352, 5: 248, 10: 260, 100: 330}
    sim = C.run_toolik([params_for("1"), params_for("2")])
    for years in (C.CALIBRATION_YEARS, C.VALIDATION_YEARS):
        v1 = C.climatology_scores(sim[0], obs, years)
        v2 = C.climatology_scores(sim[1], obs, years)
        for a, b in zip(v1, v2):
            assert a.bias < -4.5 and abs(b.bias) < 1.0, (years, a, b)
            assert b.rmse < 0.5 * a.rmse
