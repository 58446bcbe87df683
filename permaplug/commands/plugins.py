"""``permaplug plugins``: list installed plugins, built-in and third-party, and load errors."""
from __future__ import annotations

import json

import click


@click.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins."""
    from permaplug.core.plugins import get_registry

    reg = get_registry()
    rows = [
        {
            "kind": p.kind, "name": p.name, "distribution": p.distribution, "version": p.version,
            "origin": "built-in" if p.builtin else "third-party",
            "class": p.class_path,
        }
        for p in sorted(reg.all(), key=lambda p: (p.kind, p.name))
    ]
    broken = [
        {"distribution": b.distribution, "version": b.version, "entry_point": b.entry_point,
         "error": b.error}
        for b in reg.broken
    ]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "broken": broken}, indent=2))
        return
    if not rows:
        click.echo("No plugins registered.")
    widths = {k: max([len(k)] + [len(str(r[k])) for r in rows]) for k in
              ("kind", "name", "distribution", "version", "origin")}
    header = "  ".join(k.ljust(w) for k, w in widths.items())
    click.echo(header)
    click.echo("  ".join("-" * w for w in widths.values()))
    for r in rows:
        click.echo("  ".join(str(r[k]).ljust(w) for k, w in widths.items()))
    for b in broken:
        click.echo(f"BROKEN  {b['distribution']} {b['version']} (entry point {b['entry_point']}):"
                   f" {b['error']}")
