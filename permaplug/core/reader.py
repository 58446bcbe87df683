"""The intake reader every permaplug catalog entry names (``permaplug.core.catalog:
PermaplugReader``; kept apart so that validating and listing a catalog imports no intake)."""
from __future__ import annotations

from importlib import resources
from typing import Any, ClassVar

import xarray as xr
from intake.readers.readers import BaseReader


class PermaplugReader(BaseReader):
    """intake reader that opens a registered permaplug source plugin.

    kwargs: ``plugin`` (source name), ``options`` (dict of the source's options, paths already
    resolved). ``read()`` returns the source's :class:`xarray.Dataset`.
    """

    output_instance = "xarray:Dataset"
    imports: ClassVar[set[str]] = {"xarray"}

    def _read(self, plugin: str, options: dict[str, Any] | None = None, **_: Any) -> xr.Dataset:
        from permaplug.core.plugins import get_source
        from permaplug.core.read_cache import cached_read

        cls = get_source(plugin)
        opts = _local_paths(dict(options or {}))
        return cached_read(plugin, cls, opts, lambda: cls(**opts).open())


def _local_paths(val: Any) -> Any:
    """Options as intake alone hands them over, made usable by a source: ``{PERMAPLUG_RESOURCES}``
    (a template intake does not know) filled in, and intake's ``file://`` prefix of
    ``{CATALOG_DIR}`` removed. Options permaplug resolved already pass through unchanged."""
    if isinstance(val, dict):
        return {k: _local_paths(v) for k, v in val.items()}
    if isinstance(val, list):
        return [_local_paths(v) for v in val]
    if isinstance(val, str):
        # the package's bundled data folder (permaplug.core.catalog.resources_dir)
        val = val.replace("{PERMAPLUG_RESOURCES}", str(resources.files("permaplug") / "resources"))
        return val.removeprefix("file://")
    return val
