"""The bundled demo data: a physics emulator driven by real ERA5 and IPSL-CM5A-MR forcing.

``build_demo(out_dir, seed=0, ...)`` writes the files (ERA5-Land, CMIP5, USGS lithology and
OpenLandMap formats) and an intake catalog; ``ensure_demo_catalog()`` returns the default catalog
in the user cache folder, building it on first use. See docs/demo-data.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from permaplug.demo.cache import DEMO_VERSION, demo_dir

if TYPE_CHECKING:
    from permaplug.demo.build import build_demo, ensure_demo_catalog


def __getattr__(name: str) -> Any:
    """``build_demo`` and ``ensure_demo_catalog`` (numpy, xarray, the emulator) are imported on
    first use."""
    if name in ("build_demo", "ensure_demo_catalog"):
        from permaplug.demo import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEMO_VERSION", "build_demo", "demo_dir", "ensure_demo_catalog"]
