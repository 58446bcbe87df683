"""``permaplug correct``: real bundled tables (fast) and the demo data's "done when" (slow)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.correction.io import load_corrector


def _run(args: list[str]):
    return CliRunner().invoke(cli, ["correct", *args], catch_exceptions=False)


def test_correct_errors_are_one_line(tmp_path):
    res = _run(["--catalog", "real-tables", "--corrector", "qmm", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "Error: Unknown corrector: 'qmm' (did you mean 'qm'?)" in res.output
    assert "Traceback" not in res.output
    res = _run(["--catalog", "real-tables", "--calibration", "2023-2001"])
    assert res.exit_code == 1 and "--calibration '2023-2001'" in res.output
    res = _run(["--catalog", "real-tables", "--source", "cmip5-ipsl-box", "--continuation",
                "rcp99", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "continuation scenario 'rcp99'" in res.output
    assert not (tmp_path / "o" / "corrected.nc").exists()


def test_corrector_options_are_checked_before_any_data_is_read(tmp_path):
    out = tmp_path / "o"
    for opt, msg in (("preserve_order=maybe", "preserve_order must be true or false"),
                     ("nquantile=30", "unknown option(s) nquantile"),
                     ("preserve_order", "--corrector-option 'preserve_order': expected KEY=VALUE")):
        res = _run(["--catalog", "real-tables", "--corrector-option", opt, "--out", str(out)])
        assert res.exit_code == 1, res.output
        assert msg in res.output and "Traceback" not in res.output
        assert not out.exists()


def test_correct_with_preserve_order_on_real_tables(tmp_path):
    out = tmp_path / "qm"
    res = _run(["--catalog", "real-tables", "--source", "cmip5-ipsl-box",
                "--corrector-option", "preserve_order=true", "--out", str(out)])
    assert res.exit_code == 0, res.output
    corrected = xr.open_dataset(out / "corrected.nc")
    assert corrected.attrs["bias_correction_options"] == "preserve_order=True"
    from permaplug.core.catalog import load_catalog
    from permaplug.correction.pipeline import open_inputs

    scen, _ = open_inputs(load_catalog("real-tables"), None, "cmip5-ipsl-box")
    month = corrected["time"].dt.month.values
    for s in corrected.scenario.values:
        for b in corrected.band.values:
            x = scen["t2m"].sel(scenario=s, band=b, time=corrected.time).values
            y = corrected["t2m"].sel(scenario=s, band=b).values
            for m in range(1, 13):
                ok = (month == m) & np.isfinite(x)
                assert np.diff(y[ok][np.argsort(x[ok], kind="stable")]).min() >= -1e-5
    assert load_corrector(out / "corrector.nc").options["preserve_order"] is True


def test_correct_report_on_real_ipsl_and_era5_tables(tmp_path):
    out = tmp_path / "qm"
    res = _run(["--catalog", "real-tables", "--source", "cmip5-ipsl-box", "--corrector", "qm",
                "--report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "data: CMIP5 IPSL-CM5A-MR Alaska box (real)" in res.output
    assert "no reference data in 2001-2023 for unit(s) 0, 1 (left out)" in res.output
    summary = pd.read_csv(out / "summary.csv", comment="#").set_index("variable")
    # the real model is several degrees too warm; QM removes that bias (and its KS distance)
    assert summary.loc["t2m", "abs bias raw"] > 3.0
    assert summary.loc["t2m", "abs bias qm"] < 0.05
    assert summary.loc["t2m", "KS qm"] < 0.1 * summary.loc["t2m", "KS raw"]
    # QM reshapes the late-century scenario spread (QDM keeping it: test_correct_real.py)
    raw = summary.loc["t2m", "spread 2071-2099 raw"]
    assert abs(summary.loc["t2m", "spread 2071-2099 qm"] / raw - 1) > 0.10
    corrected = xr.open_dataset(out / "corrected.nc")
    assert corrected.attrs["permaplug_data"] == "CMIP5 IPSL-CM5A-MR Alaska box (real)"
    assert corrected.attrs["bias_correction"] == "qm"
    assert list(corrected.band.values) == [2, 3, 4, 5]
    assert load_corrector(out / "corrector.nc").name == "qm"
    md = (out / "report.md").read_text()
    assert "reference: ERA5 points (real, Climate Reanalyzer)" in md
    assert (out / "figure11_correction.png").stat().st_size > 20_000


@pytest.mark.slow
@pytest.mark.parametrize("corrector", ["qm", "qdm"])
def test_done_when_on_the_demo_data(tmp_path, monkeypatch, corrector):
    """The issue's "done when": qm and qdm reports on the bundled demo data."""
    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path / "cache"))
    from permaplug.demo import build_demo

    catalog = build_demo(tmp_path / "demo", progress=False)
    other = "qdm" if corrector == "qm" else "qm"
    out = tmp_path / corrector
    res = _run(["--catalog", str(catalog), "--corrector", corrector, "--compare", other,
                "--report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "data: demo emulator" in res.output
    s = pd.read_csv(out / "summary.csv", comment="#").set_index("variable")
    for v in ("t2m", "skt", "tp", "sf", "strd"):
        assert s.loc[v, f"abs bias {corrector}"] < 0.1 * s.loc[v, "abs bias raw"], v
        assert s.loc[v, f"KS {corrector}"] < s.loc[v, "KS raw"], v
    assert abs(s.loc["t2m", "spread 2071-2100 qdm"] / s.loc["t2m", "spread 2071-2100 raw"] - 1) < 0.1
    for col in ("2024-2030 raw", "2071-2100 raw", "2024-2030 qm", "2071-2100 qm",
                "2024-2030 qdm", "2071-2100 qdm"):
        assert f"spread {col}" in s.columns
