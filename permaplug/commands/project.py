"""``permaplug project``: scenario projections, skill against truth and permafrost indicators."""
from __future__ import annotations

import json
from pathlib import Path

import click

from permaplug.commands.options import (
    check_run_folder,
    continuation_option,
    corrector_option_option,
    parse_key_values,
    quiet_option,
    scenario_pair_option,
)


def _run_corrector(run_dir: Path) -> tuple[str, dict]:
    """The corrector (and its options) recorded in the run's config.yaml; ``qm`` when absent."""
    import yaml

    from permaplug.core.errors import ConfigError

    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{run_dir / 'config.yaml'}: cannot read ({exc})") from None
    return str(cfg.get("corrector") or "qm"), dict(cfg.get("corrector_options") or {})


@click.command(name="project")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--scenarios", default=None, metavar="LIST",
              help="Comma-separated scenarios (default: every scenario of the catalog's "
                   "scenario entry).")
@click.option("--corrector", default=None,
              help="Bias correction of the scenario features: qm, qdm, dqm or none "
                   "(default: the run's recipe's, e.g. qm for paper, qdm for physical).")
@click.option("--end", type=click.IntRange(2024, 2100), default=2030, show_default=True,
              help="Last projected year (2024-2100).")
@corrector_option_option
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False), default=None,
              help="Catalog of the scenarios (default: the run's own); the historical table "
                   "is read from the run folder.")
@continuation_option
@scenario_pair_option
@quiet_option
def project(run_dir: Path, scenarios: str | None, corrector: str | None, end: int,
            corrector_options: tuple[str, ...], catalog_path: str | None,
            continuation: str | None, scenario_pair: str | None, quiet: bool) -> None:
    """Project a run's networks under bias-corrected climate scenarios.

    The historical table comes from the run folder (RUN_DIR/inputs); only the scenarios are
    read from a catalog.
    """
    from permaplug.core.plugins import get_registry

    check_run_folder(run_dir)
    options = parse_key_values(corrector_options, "--corrector-option")
    if corrector is None:  # the run's recipe chose it (older runs: qm)
        corrector, recorded = _run_corrector(run_dir)
        options = {**recorded, **options}
    get_registry().info("corrector", corrector)  # an unknown name fails before any import
    from permaplug.core.atomic import check_writable
    from permaplug.projection.pipeline import project_run

    check_writable(run_dir / "projections")

    nc = project_run(run_dir, catalog_path, scenarios.split(",") if scenarios else None,
                     corrector=corrector, end=end, progress=not quiet,
                     corrector_options=options,
                     continuation=continuation, scenario_pair=scenario_pair, echo=click.echo)
    summary = json.loads((nc.parent / "summary.json").read_text(encoding="utf-8"))
    click.echo(f"data: {summary['data']}")
    click.echo(f"projections ({', '.join(summary['scenarios'])}; corrector {summary['corrector']}; "
               f"{summary['historical_end']} -> {end}-12): {nc}")
    pair = summary.get("scenario_pair")
    for model, diff in (summary.get(summary.get("difference_key") or "") or {}).items():
        parts = ", ".join(f"{k}: {v:+.2f}" for k, v in diff.items())
        click.echo(f"  {model}: {pair[1]} - {pair[0]}, layer 1 (degC) {parts}")
    if summary["skill_against_truth"]:
        click.echo(f"skill against the scenario truth ({', '.join(summary['skill_kinds'])}): "
                   f"{nc.parent / 'skill.csv'}")
    if summary.get("scenario_difference"):
        click.echo(f"scenario differences: {nc.parent / 'scenario_difference.csv'}")
