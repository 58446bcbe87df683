"""``permaplug project``."""
from __future__ import annotations

import click

from permaplug.core.errors import NotAvailableError


@click.command(name="project", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def project(args: tuple[str, ...]) -> None:
    """Not available yet."""
    raise NotAvailableError("'permaplug project' is not available yet in this version")
