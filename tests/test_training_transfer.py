"""Transfer from the emulator to the real Toolik record (issue 14.4), at toy scale."""
from __future__ import annotations

import numpy as np
import pytest

from permaplug.core.catalog import load_catalog
from permaplug.core.errors import DataError
from permaplug.data.assemble import assemble_table
from permaplug.training.transfer import VARIANTS, TransferSetup, compare_transfer, markdown


@pytest.fixture(scope="module")
def tables(demo_catalog):
    emulator = assemble_table(load_catalog(demo_catalog), source="era5land")
    site = assemble_table(load_catalog("toolik"), source="era5-toolik", spatial="sites")
    return emulator, site


def test_three_variants_scored_on_the_same_toolik_windows(tables):
    emulator, site = tables
    setup = TransferSetup(epochs=2, finetune_epochs=2, early_stopping=0)
    lines: list[str] = []
    res = compare_transfer(emulator, site, ["gru"], setup, echo=lines.append)
    assert res["inputs"] == ["t2m", "tp", "year", "month_sin", "month_cos"]
    row = res["networks"]["gru"]
    assert set(row) == set(VARIANTS)
    for variant in VARIANTS:
        assert row[variant]["stl4"]["n"] == 0  # no sensor below 100 cm: never scored
        for layer in ("stl1", "stl2", "stl3"):
            assert np.isfinite(row[variant][layer]["rmse"])
            assert row[variant][layer]["n"] == res["baselines"]["climatology"][layer]["n"]
    # fine-tuning changes the emulator model's predictions
    assert row[VARIANTS[1]]["stl1"]["rmse"] != row[VARIANTS[2]]["stl1"]["rmse"]
    assert "emulator band 4" in lines[0]
    assert "| gru | emulator + fine-tune |" in markdown(res)


def test_the_site_must_share_the_emulator_band(tables):
    emulator, site = tables
    other = site.assign_coords(band=("site", [2]))
    with pytest.raises(DataError, match="site_embedding: band"):
        compare_transfer(emulator, other, ["gru"], TransferSetup(epochs=1), echo=lambda s: None)
