"""The mainland-Alaska polygon and its mask."""
from __future__ import annotations

import numpy as np

from permaplug.data.region import alaska_mask, load_region


def test_known_places():
    # Fairbanks, Utqiagvik, Bethel, Whitehorse (Yukon), Chukotka (Russia), Bering Sea
    lat = np.array([64.84, 71.29, 60.79, 60.72, 65.0, 58.0])
    lon = np.array([-147.72, -156.77, -161.76, -135.06, 175.0, -175.0])
    assert alaska_mask(lat, lon).tolist() == [True, True, True, False, False, False]


def test_broadcast_and_0_360_longitudes():
    lat = np.array([64.84, 70.0])[:, None]
    lon = np.array([-147.72, 212.28, -130.0])[None, :]
    m = alaska_mask(lat, lon)
    assert m.shape == (2, 3)
    assert m[:, 0].tolist() == m[:, 1].tolist() == [True, True]
    assert not m[:, 2].any()  # east of -141: outside (panhandle and Canada are clipped)


def test_polygon_extent():
    minx, miny, maxx, maxy = load_region().bounds
    assert (minx, maxx) == (-168.0, -141.0)
    assert 54 < miny < 60 and 71 < maxy < 72
