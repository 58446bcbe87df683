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

def _set_quiet(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    from permaplug.core.progress import set_quiet

    set_quiet(value)
    return value


quiet_option = click.option(
    "--quiet", "--no-progress", "quiet", is_flag=True, callback=_set_quiet,
    help="No progress bars (they are only shown on a terminal anyway).",
)

continuation_option = click.option(
    "--continuation", default=None, metavar="SCENARIO",
    help="Scenario that continues the historical run over the calibration period (default: "
         "the catalog entry's metadata.continuation, else the highest-forcing scenario).",
)

scenario_pair_option = click.option(
    "--scenario-pair", "scenario_pair", default=None, metavar="LOW,HIGH",
    help="Two scenarios whose difference HIGH - LOW is reported (default: the catalog entry's "
         "metadata.scenario_pair, else the lowest- and highest-forcing scenarios).",
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
