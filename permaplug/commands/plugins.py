"""``permaplug plugins``: list installed plugins, built-in and third-party, load errors, name
conflicts, and (``--variables``) the variables sources and derived features declare."""
from __future__ import annotations

import json

import click


def _table(rows: list[dict], keys: tuple[str, ...]) -> list[str]:
    widths = {k: max([len(k)] + [len(str(r[k])) for r in rows]) for k in keys}
    lines = ["  ".join(k.ljust(w) for k, w in widths.items()).rstrip(),
             "  ".join("-" * w for w in widths.values())]
    lines += ["  ".join(str(r[k]).ljust(w) for k, w in widths.items()).rstrip() for r in rows]
    return lines


def _variables(reg) -> tuple[list[dict], list[dict]]:
    rows = []
    ok = reg.variables()
    for name, v in ok.items():
        rows.append({"name": name, "units": v.units, "kind": v.kind,
                     "standard_name": v.standard_name, "declared_by": reg.declared_by(name)})
    conflicts = [{"name": name, "declarations": [
        {"units": d.variable.units, "declared_by": d.origin} for d in decls]}
        for name, decls in reg.variable_conflicts().items()]
    return rows, conflicts


@click.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--variables", "show_variables", is_flag=True,
              help="List the variables sources and derived features declare.")
def plugins(as_json: bool, show_variables: bool) -> None:
    """List installed plugins."""
    from permaplug.core.plugins import get_registry

    reg = get_registry()
    conflicting = {(k, n) for k, n in reg.conflicts}
    rows = [
        {
            "kind": p.kind, "name": p.name, "distribution": p.distribution, "version": p.version,
            "origin": "built-in" if p.builtin else "third-party",
            "status": "CONFLICT" if (p.kind, p.name) in conflicting else "ok",
            "class": p.class_path,
        }
        for p in sorted(reg.all(), key=lambda p: (p.kind, p.name, p.distribution))
    ]
    broken = [
        {"distribution": b.distribution, "version": b.version, "entry_point": b.entry_point,
         "error": b.error}
        for b in reg.broken
    ]
    variables, var_conflicts = _variables(reg) if show_variables else ([], [])
    if as_json:
        doc = {"plugins": rows, "broken": broken,
               "conflicts": [{"kind": k, "name": n, "distributions": [p.distribution
                                                                       for p in infos]}
                             for (k, n), infos in sorted(reg.conflicts.items())]}
        if show_variables:
            doc["variables"] = variables
            doc["variable_conflicts"] = var_conflicts
        click.echo(json.dumps(doc, indent=2))
        return
    if show_variables:
        for line in _table(variables, ("name", "units", "kind", "standard_name", "declared_by")):
            click.echo(line)
        for c in var_conflicts:
            both = " and ".join(f"{d['units']!r} by {d['declared_by']}" for d in c["declarations"])
            click.echo(f"CONFLICT  variable {c['name']!r} declared with different units: {both}")
        return
    if not rows:
        click.echo("No plugins registered.")
    else:
        for line in _table(rows, ("kind", "name", "distribution", "version", "origin",
                                  "status")):
            click.echo(line)
    for (kind, name), infos in sorted(reg.conflicts.items()):
        click.echo(f"CONFLICT  {kind} {name!r} is registered by "
                   + " and ".join(p.describe() for p in infos)
                   + "; using it is an error until one is uninstalled")
    for b in broken:
        click.echo(f"BROKEN  {b['distribution']} {b['version']} (entry point {b['entry_point']}):"
                   f" {b['error']}")
