"""``permaplug fetch``: download ERA5-Land (CDS or Earth Engine) or CMIP files (ESGF)."""
from __future__ import annotations

import click

from permaplug.core import schema


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@click.group(name="fetch")
def fetch() -> None:
    """Download provider data (credentials from the providers' standard configuration)."""


@fetch.command(name="era5land")
@click.option("--backend", type=click.Choice(["cds", "gee"]), default="cds", show_default=True,
              help="Climate Data Store (cdsapi) or Earth Engine (earthengine-api).")
@click.option("--start", type=int, default=schema.TRAIN_YEARS[0], show_default=True)
@click.option("--end", type=int, default=schema.TEST_YEARS[1], show_default=True)
@click.option("--variables", default=None,
              help="Comma-separated canonical names (cds only; default: all 16).")
@click.option("--collection", type=click.Choice(["monthly", "daily"]), default="monthly",
              show_default=True, help="Earth Engine collection (gee only).")
@click.option("--project", default=None, help="Google Cloud project for Earth Engine (gee).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
def era5land(backend: str, start: int, end: int, variables: str | None, collection: str,
             project: str | None, out: str) -> None:
    """Download ERA5-Land monthly data for mainland Alaska."""
    from permaplug.data.fetch import fetch_era5land_cds, fetch_era5land_gee

    if backend == "cds":
        files = fetch_era5land_cds(out, start, end, variables=_split(variables))
    else:
        files = fetch_era5land_gee(out, start, end, collection=collection, project=project)
    click.echo(f"{len(files)} file(s) in {out}")


@fetch.command(name="cmip")
@click.option("--project", "project", type=click.Choice(["CMIP5", "CMIP6"]), default="CMIP5",
              show_default=True)
@click.option("--model", default="IPSL-CM5A-MR", show_default=True)
@click.option("--experiments", default="historical,rcp26,rcp45,rcp60,rcp85", show_default=True)
@click.option("--variables", default="tas,ts,pr,prsn,rlds,rsds,hfls,hfss,mrso,mrsos",
              show_default=True)
@click.option("--member", default="r1i1p1", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
def cmip(project: str, model: str, experiments: str, variables: str, member: str,
         out: str) -> None:
    """Search ESGF and download CMIP monthly files (plus sftlf)."""
    from permaplug.data.fetch import fetch_esgf

    files = fetch_esgf(out, project=project, model=model, experiments=_split(experiments) or [],
                       variables=_split(variables) or [], member=member)
    click.echo(f"{len(files)} file(s) in {out}")
