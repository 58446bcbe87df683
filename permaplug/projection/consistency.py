"""Does every input mean the same in the historical table and in the scenarios?

A network learns what its inputs mean in the reanalysis. A projection feeds it the scenario's
values of the same names, so a feature is only fit for projections when the scenario source
supplies it with the same meaning. Each feature states how it is obtained for a scenario:

* a source variable: the scenario source's ``scenario_notes`` (e.g. "CMIP tas, bias-corrected");
  a source lists in ``differs`` what it supplies with another meaning, with the reason;
* a derived feature (plugin): computed by the same code from its inputs (``Feature.scenario``
  says otherwise where needed), so it is consistent when all its inputs are;
* a static feature: the training table's own value (the same by construction).

:func:`check_consistency` runs before training (``permaplug run`` with projections) and
refuses, in one line, a feature whose meaning differs, unless the run's recipe lists it in
``allow_inconsistent`` (the ``paper`` recipe does, for soil water, to reproduce the paper).

The finding behind it (demo emulator): the reanalysis ``swvl1..4`` are the LIQUID water of each
layer and fall as the soil freezes, while the scenario ``swvl`` are TOTAL water split from the
climate model's ``mrso``; fed to a network trained on the former, a thawed future reads as
frozen ground. See docs/recipes.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from permaplug.core.errors import CatalogError, ConfigError


@dataclass(frozen=True)
class Supply:
    """How one input feature is obtained for the scenarios."""

    feature: str
    how: str
    consistent: bool
    reason: str = ""  # why not, when not consistent


def _scenario_source(cat: Any, entry: str) -> type:
    from permaplug.core.plugins import get_source

    return get_source(cat.entry(entry).plugin)


def supply_table(dynamic: Sequence[str], source_cls: type, entry: str = "scenario"
                 ) -> list[Supply]:
    """A :class:`Supply` per name of ``dynamic`` (and of every input it is derived from, in
    dependency order) for the scenario source class ``source_cls``."""
    from permaplug.data.features import feature_classes

    feats = feature_classes()
    notes = dict(getattr(source_cls, "scenario_notes", {}) or {})
    differs = dict(getattr(source_cls, "differs", {}) or {})
    out: dict[str, Supply] = {}

    def visit(name: str, chain: tuple[str, ...]) -> Supply:
        if name in out:
            return out[name]
        if name in feats and name not in notes and name not in differs and name not in chain:
            cls = feats[name]
            parts = [visit(dep, (*chain, name)) for dep in cls.inputs]
            bad = [p for p in parts if not p.consistent]
            row = Supply(name, cls.scenario_note(), not bad,
                         "; ".join(f"from {p.feature}: {p.reason}" for p in bad))
        elif name in differs:
            row = Supply(name, notes.get(name, f"from scenario entry {entry!r}"), False,
                         differs[name])
        else:
            row = Supply(name, notes.get(name, f"{name} from scenario entry {entry!r}"), True)
        out[name] = row
        return row

    for name in dynamic:
        visit(name, ())
    return list(out.values())


def check_consistency(catalog: str | Path | None, dynamic: Sequence[str],
                      allow: Sequence[str] = (), recipe: str = "",
                      source: str | None = None) -> list[Supply]:
    """The supply rows of the run's dynamic inputs ``dynamic`` against the catalog's scenario
    entry (``[]`` when the catalog has none).

    ConfigError (one line) for the first input whose meaning differs and that ``allow`` does
    not list; the allowed ones are returned with ``consistent=False`` for the caller to note.
    """
    from permaplug.core.catalog import load_catalog
    from permaplug.projection.supply import scenario_entry

    cat = load_catalog(catalog)
    try:
        entry = scenario_entry(cat, source)
    except CatalogError:
        return []
    rows = supply_table(list(dynamic), _scenario_source(cat, entry), entry)
    chosen = set(dynamic)
    bad = [r for r in rows if not r.consistent and r.feature in chosen
           and r.feature not in set(allow)]
    if bad:
        names = ", ".join(r.feature for r in bad)
        raise ConfigError(
            f"input {bad[0].feature!r} means something else in scenario entry {entry!r} than in "
            f"the reanalysis ({bad[0].reason}); leave out {names} (e.g. --recipe physical, or "
            "--drop-feature), list them under allow_inconsistent in a recipe, or run with "
            "--no-project")
    return rows
