"""Where the demo data live (the user cache folder), one folder per demo version.

Kept apart from :mod:`permaplug.demo.build` so that finding an already built demo catalog (what
every command without ``--catalog`` does first) imports neither xarray nor the emulator;
building one is :func:`permaplug.demo.build.ensure_demo_catalog`.
"""
from __future__ import annotations

from pathlib import Path

from permaplug.core.user_cache import cache_root

DEMO_VERSION = "3"
"""Version of the demo data (emulator + formats) built by default; the cache folder is named after
it. Earlier versions stay buildable by name (:data:`permaplug.demo.params.VERSIONS`)."""


def demo_dir(version: str = DEMO_VERSION) -> Path:
    """Folder of the demo data of ``version`` (default: the current one) in the cache."""
    if version != DEMO_VERSION:
        from permaplug.demo.params import params_for

        params_for(version)  # an unknown version is a ConfigError
    return cache_root() / f"demo-v{version}"


def demo_catalog_names() -> dict[str, str]:
    """Catalog names of every demo version: ``demo-v<version>`` -> version."""
    from permaplug.demo.params import VERSIONS

    return {f"demo-v{v}": v for v in VERSIONS}


def built_demo_catalog(version: str = DEMO_VERSION) -> Path | None:
    """The demo catalog of ``version`` when it is already built, else None."""
    catalog = demo_dir(version) / "catalog.yaml"
    return catalog if catalog.exists() else None
