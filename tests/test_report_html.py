"""The HTML report: every section, embedded figures, data label; and a real headless browser."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _projection_fixtures import hist_table, scenarios, tiny_run

from permaplug.explain.pipeline import explain_run
from permaplug.projection.pipeline import write_projections
from permaplug.report.html import SECTIONS, write_report

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A tiny run with projections (with a synthetic truth) and explanations."""
    run = tiny_run(tmp_path_factory.mktemp("tinyrun"))
    table = hist_table(start="2013-01-01")
    scen = scenarios(end="2030-12-01")
    from permaplug.projection.pipeline import observed_profiles, project
    proj = project(run, table, scen, 2030, progress=False)
    truth = {s: proj.sel(scenario=s, model="gru", drop=True) + 0.5 for s in ("rcp26", "rcp85")}
    write_projections(run, table, scen, "qm", 2030, truth, progress=False)
    explain_run(run.path, n_background=20, n_explained=6, options={"nsamples": 50},
                progress=False, table=table)
    assert observed_profiles(table).sizes["layer"] == 4
    return run.path


def test_report_has_every_section_and_embeds_figures(full_run, tmp_path):
    out = write_report([full_run], tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    for sid, title in SECTIONS:
        assert f'<section id="{sid}">' in text and title in text
    assert "data: test synthetic" in text
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    # Figure 4 + loss curves, scenario panels, thaw depth, SHAP bars
    assert len(imgs) >= 5
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert not re.search(r'(src|href)="https?:', text)  # self-contained
    assert "End to end: the projections on bias-corrected climate-model forcing" in text
    assert "rcp85 all" in text and "rcp26 stl1" in text  # model x scenario, layers all and stl1
    assert "0.500" in text  # the truth is the projection + 0.5 degC: climatology RMSE 0.5
    assert "Highest minus lowest scenario" in text and "rcp85-rcp26" in text
    assert "no projections" not in text and "no explanations" not in text


def test_summary_has_projection_and_truth_differences(full_run):
    import json
    summary = json.loads((full_run / "projections" / "qm-2030" / "summary.json").read_text())
    assert summary["data"] == "test synthetic" and summary["skill_against_truth"]
    assert summary["scenario_pair"] == ["rcp26", "rcp85"]  # default: lowest, highest forcing
    assert summary["difference_key"] == "rcp85_minus_rcp26_stl1_degC"
    got = summary["rcp85_minus_rcp26_stl1_degC"]["gru"]["2024-2030"]
    # the truth is the projection shifted by 0.5 degC in both scenarios: same difference
    assert summary["truth_rcp85_minus_rcp26_stl1_degC"]["2024-2030"] == pytest.approx(got,
                                                                                     abs=1e-5)


def test_report_shows_the_extrapolation_note(full_run, tmp_path):
    text = write_report([full_run], tmp_path / "r.html").read_text()
    body = text.split('<section id="extrapolation">', 1)[1].split("</section>", 1)[0]
    # trained on 2015-2018, projected to 2030: `year` is far outside the training range
    assert "<p class='warn'>" in body and "year " in body and "training SD" in body
    assert "data: test synthetic" in body


def test_report_says_what_is_missing(tmp_path):
    run = tmp_path / "bare"
    run.mkdir()
    (run / "config.yaml").write_text("source: era5land\n")
    text = write_report([run], tmp_path / "r.html").read_text()
    assert "no projections (run `permaplug project" in text
    assert "no extrapolation table (run `permaplug project" in text
    assert "no explanations (run `permaplug explain" in text
    assert "no metrics.json" in text


def test_report_refuses_a_non_run_folder(tmp_path):
    from permaplug.core.errors import ConfigError
    with pytest.raises(ConfigError, match="not a permaplug run folder"):
        write_report([tmp_path], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_report_loads_in_headless_chromium_without_console_errors(full_run, tmp_path):
    out = write_report([full_run], tmp_path / "r.html")
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--window-size=1400,2400", "--hide-scrollbars"]
    res = subprocess.run([str(CHROMIUM), *flags, f"--screenshot={shot}", out.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 20000, res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln]
    assert not console, console
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert 'id="comparison"' in dom.stdout and "<table>" in dom.stdout
    # keep the screenshot for people to look at when PERMAPLUG_KEEP_SCREENSHOT is set
    import os
    keep = os.environ.get("PERMAPLUG_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_report_of_two_runs_names_both_in_every_section(full_run, tmp_path):
    other = tmp_path / "second-run"
    other.mkdir()
    (other / "config.yaml").write_text("source: era5land\nresolved:\n  data: demo emulator\n")
    text = write_report([full_run, other], tmp_path / "r.html").read_text()
    assert "data: demo emulator; test synthetic" in text
    assert "emulator results, not observations" in text  # the demo run is flagged
    for sid, _ in SECTIONS:
        body = text.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]
        assert full_run.name in body and "second-run" in body, sid
