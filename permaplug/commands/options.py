"""Options shared by several commands."""
from __future__ import annotations

from typing import Any

import click

from permaplug.core.errors import ConfigError

catalog_option = click.option(
    "--catalog", "catalog_path", type=click.Path(dir_okay=False), default=None,
    help="intake catalog (YAML) describing the data; default: the bundled demo catalog.",
)

corrector_option_option = click.option(
    "--corrector-option", "corrector_options", multiple=True, metavar="KEY=VALUE",
    help="Option of the corrector (repeatable), e.g. preserve_order=true or nquantiles=30.",
)


def check_run_folder(path: Any) -> None:
    """ConfigError unless ``path`` is a run folder (holds ``config.yaml``): checked before a
    command imports its pipeline, so that the mistake is answered at once."""
    from pathlib import Path

    if not (Path(path) / "config.yaml").exists():
        raise ConfigError(f"{path}: not a permaplug run folder (no config.yaml)")


def parse_key_values(pairs: tuple[str, ...] | list[str], option: str) -> dict[str, Any]:
    """``["a=1", "b=true"]`` -> ``{"a": 1, "b": True}`` (values read as YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {pair!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out
