"""Transfer from the emulator to the real Toolik record (issue 14.4), at toy scale."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from permaplug.core.catalog import load_catalog
from permaplug.core.errors import DataError
from permaplug.data.assemble import assemble_table
from permaplug.training.transfer import (
    VARIANTS,
    TransferSetup,
    compare_transfer,
    markdown,
    median_over_seeds,
    restrict,
    shared_inputs,
)


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


def test_derived_forcing_features_transfer_where_both_tables_supply_them(tables):
    emulator, site = tables
    wanted = ["t2m", "tp", "d2m", "year", "month_sin", "month_cos", "snowpack_dd", "tdd"]
    # d2m: the demo's ERA5-Land table has no dew point; the derived features need t2m, tp only
    assert shared_inputs([emulator, site], wanted) == ["t2m", "tp", "snowpack_dd", "tdd"]
    assert shared_inputs([site], wanted) == ["t2m", "tp", "d2m", "snowpack_dd", "tdd"]
    with pytest.raises(DataError, match="d2m"):
        restrict(emulator, ["t2m", "d2m"])
    setup = TransferSetup(inputs=("t2m", "tp", "snowpack_dd", "tdd"), epochs=1,
                          finetune_epochs=1, early_stopping=0)
    runs = [compare_transfer(emulator, site, ["tcn"], replace(setup, seed=s),
                             echo=lambda _: None) for s in (0, 1)]
    assert runs[0]["inputs"] == ["t2m", "tp", "snowpack_dd", "tdd", "year", "month_sin",
                                 "month_cos"]
    med = median_over_seeds(runs)
    assert med["seeds"] == [0, 1]
    for variant in VARIANTS:
        a, b = (r["networks"]["tcn"][variant]["stl1"]["rmse"] for r in runs)
        assert med["networks"]["tcn"][variant]["stl1"]["rmse"] == pytest.approx((a + b) / 2)
    assert a != b  # the seeds differ, so the median is not one seed's number
    for layer in ("stl1", "stl2", "stl3"):  # baselines do not depend on the seed
        assert (med["baselines"]["climatology"][layer]
                == runs[0]["baselines"]["climatology"][layer])
