"""``permaplug catalog``: list a catalog's entries, show one, list the bundled catalogs."""
from __future__ import annotations

import json

import click

from permaplug.commands.options import catalog_option


def _load(ctx: click.Context, catalog_path: str | None):
    from permaplug.core.catalog import load_catalog

    path = catalog_path or (ctx.obj or {}).get("catalog_path")
    return load_catalog(path)


@click.group(name="catalog", invoke_without_command=True)
@catalog_option
@click.pass_context
def catalog(ctx: click.Context, catalog_path: str | None) -> None:
    """List or show catalog entries (default: list)."""
    ctx.obj = {"catalog_path": catalog_path}
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_entries, catalog_path=catalog_path)


@catalog.command(name="list")
@catalog_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_entries(ctx: click.Context, catalog_path: str | None, as_json: bool = False) -> None:
    """List the entries of a catalog."""
    cat = _load(ctx, catalog_path)
    rows = [{"name": n, "role": e.role or "-", "plugin": e.plugin,
             "data": str(e.metadata.get("data_label", cat.metadata.get("data_label", "-")))}
            for n, e in ((n, cat.entry(n)) for n in cat.names())]
    if as_json:
        click.echo(json.dumps({"catalog": str(cat.path), "entries": rows}, indent=2))
        return
    click.echo(f"catalog: {cat.path}")
    widths = {k: max([len(k)] + [len(r[k]) for r in rows]) for k in ("name", "role", "plugin")}
    click.echo("  ".join(k.ljust(w) for k, w in widths.items()) + "  data")
    for r in rows:
        click.echo("  ".join(r[k].ljust(w) for k, w in widths.items()) + f"  {r['data']}")


@catalog.command(name="show")
@click.argument("name")
@catalog_option
@click.pass_context
def show(ctx: click.Context, name: str, catalog_path: str | None) -> None:
    """Show one entry: plugin, resolved options and metadata."""
    cat = _load(ctx, catalog_path)
    e = cat.entry(name)
    doc = {"catalog": str(cat.path), "entry": name, "plugin": e.plugin,
           "options": e.options, "metadata": e.metadata}
    if e.description:
        doc["description"] = e.description
    import yaml

    click.echo(yaml.safe_dump(doc, sort_keys=False).rstrip())


@catalog.command(name="bundled")
def bundled() -> None:
    """List the catalogs shipped with permaplug (usable by name with --catalog)."""
    from permaplug.core.catalog import bundled_catalogs, read_catalog_yaml

    for name, path in bundled_catalogs().items():
        meta = (read_catalog_yaml(path) or {}).get("metadata") or {}
        click.echo(f"{name:<22} {meta.get('description', '')}  ({path})")
