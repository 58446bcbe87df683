"""The bundled demo data: a physics emulator driven by real ERA5 and IPSL-CM5A-MR forcing.

``build_demo(out_dir, seed=0, ...)`` writes the files (ERA5-Land, CMIP5, USGS lithology and
OpenLandMap formats) and an intake catalog; ``ensure_demo_catalog()`` returns the default catalog
in the user cache folder, building it on first use. See docs/demo-data.md.
"""
from __future__ import annotations

from permaplug.demo.build import DEMO_VERSION, build_demo, demo_dir, ensure_demo_catalog

__all__ = ["DEMO_VERSION", "build_demo", "demo_dir", "ensure_demo_catalog"]
