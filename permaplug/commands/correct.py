"""``permaplug correct``: bias-correct the climate-model scenarios and report what it did."""
from __future__ import annotations

from pathlib import Path

import click

from permaplug.commands.options import (
    catalog_option,
    continuation_option,
    corrector_option_option,
    parse_key_values,
    quiet_option,
    scenario_pair_option,
)
from permaplug.core import progress as bars


@click.command(name="correct")
@catalog_option
@click.option("--source", "source", default="cmip", show_default=True,
              help="Scenario catalog entry, or the source plugin that reads it.")
@click.option("--corrector", default="qm", show_default=True,
              help="Corrector plugin: qm (paper), qdm, dqm, none, or a third party's.")
@click.option("--calibration", default="2001-2023", show_default=True,
              help="Calibration years FIRST-LAST (reanalysis vs historical+continuation).")
@continuation_option
@scenario_pair_option
@click.option("--min-calibration-share", "min_share", type=click.FloatRange(0, 1), default=0.9,
              show_default=True,
              help="Refuse a calibration where a variable has values in fewer months (share "
                   "of the period) in some unit, in the reanalysis or the model.")
@click.option("--compare", multiple=True,
              help="Further corrector(s) to show side by side in the report (repeatable).")
@click.option("--report", "report", is_flag=True,
              help="Print and write the bias / KS / scenario-spread report and the figure.")
@corrector_option_option
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: ./correct-<corrector>).")
@quiet_option
def correct(catalog_path: str | None, source: str, corrector: str, calibration: str,
            continuation: str | None, scenario_pair: str | None, min_share: float,
            compare: tuple[str, ...],
            report: bool, corrector_options: tuple[str, ...], out: str | None,
            quiet: bool) -> None:
    """Bias-correct the scenarios against the reanalysis; save them and the fitted corrector."""
    from permaplug.core.catalog import load_catalog
    from permaplug.core.plugins import get_corrector, get_registry
    from permaplug.correction.calibration import parse_calibration

    # options, names and the catalog are checked before any data (or xsdba) is loaded
    years = parse_calibration(calibration)
    options = parse_key_values(corrector_options, "--corrector-option")
    for name in (corrector, *compare):
        get_registry().info("corrector", name)  # unknown names fail first (nothing imported)
    cat = load_catalog(catalog_path)
    cat.find("scenario", source)
    get_corrector(corrector)(**options)  # so do unknown or bad options

    from tqdm import tqdm

    from permaplug.core import schema
    from permaplug.core.atomic import atomic_path, check_writable
    from permaplug.core.errors import DataError
    from permaplug.correction.pipeline import (
        FEATURES,
        Correction,
        correct_dataset,
        drop_units_without_reference,
        open_inputs,
        split_soil_water_if_needed,
    )

    out_dir = check_writable(Path(out) if out else Path(f"correct-{corrector}"))
    scen, obs = open_inputs(cat, None, source)
    scen = split_soil_water_if_needed(scen, obs)
    variables = [v for v in FEATURES if v in scen and v in obs]
    if not variables:
        raise DataError(f"the scenario entry and the reanalysis share none of "
                        f"{', '.join(FEATURES)}")
    skipped = [v for v in FEATURES if v not in variables]
    click.echo(f"data: {schema.data_label(scen)}; reference: {schema.data_label(obs)}")
    if skipped:
        click.echo(f"not in both inputs (left out): {', '.join(skipped)}")
    scen, obs, dropped = drop_units_without_reference(scen, obs, variables, years)
    if dropped:
        click.echo(f"no reference data in {years[0]}-{years[1]} for unit(s) "
                   f"{', '.join(dropped)} (left out)")

    results: dict[str, Correction] = {}
    names = list(dict.fromkeys([corrector, *compare])) if report else [corrector]
    for name in tqdm(names, desc="correcting", unit="corrector",
                     disable=bars.disabled(len(names) > 1)):
        results[name] = correct_dataset(scen, obs, name, years, variables, continuation,
                                        options if name == corrector else None, scenario_pair,
                                        min_share)
    main = results[corrector]
    continuation = main.continuation

    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "corrected.nc") as tmp:
        main.corrected.to_netcdf(tmp)
    main.corrector.save(out_dir / "corrector.nc")
    click.echo(f"wrote {out_dir / 'corrected.nc'} (scenarios {', '.join(map(str, scen.scenario.values))}, "
               f"{len(variables)} variables) and {out_dir / 'corrector.nc'}")
    if not report:
        return

    from permaplug.correction.report import build_report, markdown_table, write_report

    others = {k: v for k, v in results.items() if k != corrector}
    rep = build_report(main, others)
    written = write_report(rep, main, out_dir, others)
    click.echo("")
    click.echo(f"Bias correction report ({corrector}; compared: {rep.meta['labels']}) -- "
               f"data: {rep.meta['data']}; reference: {rep.meta['reference']}; calibration "
               f"{rep.meta['calibration']} (historical + {continuation})")
    click.echo("\nSummary (mean over units):")
    click.echo(markdown_table(rep.summary))
    click.echo("\nBias (model - reference) and KS distance over the calibration period:")
    click.echo(markdown_table(rep.bias))
    click.echo(f"\nSpread {rep.meta['spread']} of period means:")
    click.echo(markdown_table(rep.spread))
    click.echo("\nwrote " + ", ".join(str(p) for p in written))
