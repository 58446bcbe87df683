"""Options shared by several commands."""
from __future__ import annotations

import click

catalog_option = click.option(
    "--catalog", "catalog_path", type=click.Path(dir_okay=False), default=None,
    help="intake catalog (YAML) describing the data; default: the bundled demo catalog.",
)
