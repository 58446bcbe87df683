"""The canonical schema: band edges, layers, declared features, atomic writes."""
from __future__ import annotations

import numpy as np
import pytest

from permaplug.core import schema
from permaplug.core.atomic import atomic_path, write_text_atomic


def test_band_edges_are_the_papers():
    edges = np.asarray(schema.BAND_EDGES)
    assert schema.N_BANDS == 6
    np.testing.assert_allclose(np.diff(edges), 2.0122743, atol=1e-6)
    assert edges[0] == pytest.approx(59.2632802) and edges[-1] == pytest.approx(71.336926)


def test_band_of_latitude_edges_and_outside():
    lat = [59.2632801, 59.2632802, 61.2755545, 64.0, 71.3369, 71.336926, 75.0]
    assert schema.band_of_latitude(lat).tolist() == [-1, 0, 1, 2, 5, -1, -1]


def test_layers_and_features():
    from permaplug.core.plugins import build_registry
    from permaplug.data.features import paper_features

    assert schema.LAYERS[-1] == (1.0, 2.89)
    assert schema.LAYER_MIDPOINTS_M[0] == pytest.approx(0.035)
    declared = build_registry().variables()
    static = [n for n, v in declared.items() if v.kind == "static"]
    assert len(static) == 9 + 4 + 4
    assert [n for n, v in declared.items() if v.kind == "target"] == list(schema.TARGETS)
    assert set(paper_features()).isdisjoint(schema.TARGETS)
    for name in paper_features() + schema.TARGETS + tuple(static):
        assert declared[name].units
    assert schema.cf_attrs("tp")["cell_methods"].startswith("time: sum")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nc"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    write_text_atomic(target, "whole")
    assert target.read_text() == "whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]
