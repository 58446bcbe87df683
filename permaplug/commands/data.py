"""``permaplug data``."""
from __future__ import annotations

import click

from permaplug.core.errors import NotAvailableError


@click.command(name="data", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def data(args: tuple[str, ...]) -> None:
    """Not available yet."""
    raise NotAvailableError("'permaplug data' is not available yet in this version")
