"""Built-in source plugins, registered through the `permaplug` entry-point group."""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl


@hookimpl
def register_sources(register):
    """Register the built-in sources."""
