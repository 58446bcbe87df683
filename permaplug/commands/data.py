"""``permaplug data``: build the assembled monthly table; export any catalog entry."""
from __future__ import annotations

import warnings
from pathlib import Path

import click

from permaplug.commands.options import catalog_option, quiet_option
from permaplug.core import schema
from permaplug.core.atomic import check_writable
from permaplug.scale.options import dask_scheduler_option


@click.group(name="data")
def data() -> None:
    """Build the monthly training table or export catalog entries."""


def _summary(ds, out) -> str:

    dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    times = ds["time"].values if "time" in ds.dims else None
    span = f", {str(times.min())[:7]}..{str(times.max())[:7]}" if times is not None else ""
    return (f"Wrote {out} ({dims}{span}; {len(ds.data_vars)} variables)\n"
            f"data: {schema.data_label(ds)}")


@data.command(name="build")
@click.option("--source", default="era5land", show_default=True,
              help="Reanalysis source plugin (or entry name) in the catalog.")
@click.option("--static", "static", default="usgs-lithology,openlandmap", show_default=True,
              help="Comma-separated static sources to join ('' for none).")
@click.option("--spatial", type=click.Choice(["bands", "grid", "sites"]), default="bands",
              show_default=True,
              help="Latitude-band means, gridded land cells, or observed sites.")
@catalog_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .nc (NetCDF) or .parquet.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the bands and their monthly series (bands mode).")
@dask_scheduler_option
@quiet_option
def build(source: str, static: str, spatial: str, catalog_path: str | None, out: str,
          plot: str | None, dask_scheduler: str | None, quiet: bool) -> None:
    """Assemble the monthly table (targets, forcing, soil water, calendar, static) and write it."""
    from permaplug.data.assemble import assemble_table, write_table
    from permaplug.scale.distributed import maybe_dask_client

    names = tuple(s.strip() for s in static.split(",") if s.strip())
    for path in (out, plot):
        if path:
            check_writable(Path(path).parent)
    with maybe_dask_client(dask_scheduler, echo=click.echo):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = assemble_table(catalog_path, source=source, static=names, spatial=spatial)
        for w in caught:  # shown once each (the CLI's printer); developers' deprecations not
            if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        write_table(table, out)
    click.echo(_summary(table, out))
    if plot:
        from permaplug.data.figures import plot_table

        plot_table(table, plot)
        click.echo(f"Wrote {plot}")


@data.command(name="export")
@click.argument("entry")
@catalog_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output NetCDF file (.nc).")
def export(entry: str, catalog_path: str | None, out: str) -> None:
    """Open one catalog entry in the canonical schema and write it as NetCDF."""
    from permaplug.core.atomic import atomic_path
    from permaplug.core.catalog import load_catalog
    from permaplug.core.errors import ConfigError

    if not out.lower().endswith(".nc"):
        raise ConfigError(f"--out {out}: use a .nc file name")
    check_writable(Path(out).parent)
    ds = load_catalog(catalog_path).open(entry)
    ds = ds.copy()
    for v in ds.variables:
        if ds[v].dtype == object:
            ds[v] = ds[v].astype(str)
    with atomic_path(out) as tmp:
        ds.to_netcdf(tmp)
    click.echo(_summary(ds, out))
