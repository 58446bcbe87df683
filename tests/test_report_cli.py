"""CLI front doors of project / explain / report: one-line errors, outputs written."""
from __future__ import annotations

import pytest
from _projection_fixtures import tiny_run
from click.testing import CliRunner

from permaplug.cli import cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("tinyrun"))


def test_project_and_explain_refuse_a_folder_that_is_not_a_run(tmp_path):
    for cmd in (["project", str(tmp_path)], ["explain", str(tmp_path)]):
        res = CliRunner().invoke(cli, cmd)
        assert res.exit_code == 1, res.output
        assert res.output.startswith("Error: ") and "not a permaplug run folder" in res.output
        assert len(res.output.strip().splitlines()) == 1


def test_explain_bad_options_are_one_line_errors(run):
    res = CliRunner().invoke(cli, ["explain", str(run.path), "--n-background", "0"])
    assert res.exit_code == 1 and "--n-background and --n-explained" in res.output
    res = CliRunner().invoke(cli, ["explain", str(run.path), "--model", "persistence"])
    assert res.exit_code == 1 and "--model persistence: not a trained network" in res.output
    res = CliRunner().invoke(cli, ["explain", str(run.path), "--explainer", "shapp"])
    assert res.exit_code == 1 and "Unknown explainer: 'shapp' (did you mean 'shap'?)" in res.output


def test_project_end_out_of_range_is_a_usage_error(run):
    res = CliRunner().invoke(cli, ["project", str(run.path), "--end", "2200"])
    assert res.exit_code == 2 and "2200" in res.output


def test_report_command_writes_html(run, tmp_path):
    out = tmp_path / "sub" / "report.html"
    res = CliRunner().invoke(cli, ["report", str(run.path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and "data: test synthetic" in out.read_text()
    assert f"report: {out}" in res.output
