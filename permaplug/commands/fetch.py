"""``permaplug fetch``."""
from __future__ import annotations

import click

from permaplug.core.errors import NotAvailableError


@click.command(name="fetch", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def fetch(args: tuple[str, ...]) -> None:
    """Not available yet."""
    raise NotAvailableError("'permaplug fetch' is not available yet in this version")
