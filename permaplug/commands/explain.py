"""``permaplug explain``."""
from __future__ import annotations

import click

from permaplug.core.errors import NotAvailableError


@click.command(name="explain", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def explain(args: tuple[str, ...]) -> None:
    """Not available yet."""
    raise NotAvailableError("'permaplug explain' is not available yet in this version")
