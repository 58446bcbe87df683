"""``permaplug report``."""
from __future__ import annotations

import click

from permaplug.core.errors import NotAvailableError


@click.command(name="report", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def report(args: tuple[str, ...]) -> None:
    """Not available yet."""
    raise NotAvailableError("'permaplug report' is not available yet in this version")
