"""``permaplug correct``."""
from __future__ import annotations

import click

from permaplug.core.errors import NotAvailableError


@click.command(name="correct", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def correct(args: tuple[str, ...]) -> None:
    """Not available yet."""
    raise NotAvailableError("'permaplug correct' is not available yet in this version")
