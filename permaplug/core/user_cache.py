"""The user cache folder: the demo data (:mod:`permaplug.demo.cache`) and the sources' stored
reads (:mod:`permaplug.core.read_cache`) live under it."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The user cache folder: ``$PERMAPLUG_CACHE_DIR`` or platformdirs' user cache dir."""
    env = os.environ.get("PERMAPLUG_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("permaplug"))
