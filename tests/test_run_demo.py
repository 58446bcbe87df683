"""The issue's "done when": on the demo data, every network beats climatology and persistence.

Slow (builds the demo data set and trains five networks for 50 epochs): ``pytest -m slow``.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from permaplug.cli import cli
from permaplug.core import schema
from permaplug.training.config import NETWORKS


@pytest.mark.slow
def test_every_network_beats_the_baselines_on_the_demo_data(tmp_path, monkeypatch):
    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path / "cache"))
    from permaplug.demo import build_demo

    catalog = build_demo(tmp_path / "demo")
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--source", "era5land", "--model", "all",
                                   "--catalog", str(catalog), "--out", str(out), "--quiet",
                                   "--no-project", "--no-explain", "--no-report"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"].startswith(schema.DEMO_LABEL)
    rmse = {m: v["overall"]["rmse"] for m, v in metrics["models"].items()}
    for net in NETWORKS:
        assert rmse[net] < rmse["climatology"], (net, rmse)
        assert rmse[net] < rmse["persistence"], (net, rmse)
    assert f"data: {metrics['data']}" in (out / "comparison.md").read_text()
