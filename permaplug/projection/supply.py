"""What a scenario source can supply, known before a run reads any data.

A projection continues the historical table with the bias-corrected scenario variables the
run's networks use (:func:`permaplug.projection.tables.scenario_variables`). A climate model
that gives only ``tas`` and ``pr`` (the bundled IPSL box tables, many ESM archives) can drive a
run trained on ``t2m``/``tp``-derived inputs, but not the paper's recipe. :func:`check_supply`
compares the two before training and stops a run that could never be projected, with one line
naming the missing variables and the choices that work.

The supplied variables come from the source's declaration (``Source.provides()``, read from
options and file names, no data) when the source has one; the ``cmip`` source's file names
otherwise; opening the entry is the last resort.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from permaplug.core.errors import CatalogError, ConfigError

SOIL_WATER = ("swvl1", "swvl2", "swvl3", "swvl4")
"""Derived from the model's total soil water ``mrso`` (Dirichlet split on the reanalysis)."""


def _cmip_names(options: dict[str, Any]) -> set[str] | None:
    """Canonical variables of a ``cmip`` entry from its options and file names (no file read)."""
    from permaplug.plugins.sources import cmip

    paths = options.get("paths", options.get("path"))
    if paths is None:
        return None
    try:
        fmt = options.get("format", "auto")
        fmt = cmip._format_of(paths) if fmt == "auto" else fmt
        if fmt == "region-table":
            found = {m["var"] for p in cmip.expand_paths(paths, "cmip")
                     if (m := cmip._REGION_RE.match(p.name))}
        elif fmt == "band-table":
            found = set(cmip.BAND_TABLE_COLUMNS.values())
        else:
            found = {cmip.parse_drs(p).var for p in cmip.expand_paths(paths, "cmip")
                     if p.suffix == ".nc" and not p.name.startswith("sftlf")}
    except Exception:  # noqa: BLE001 - any unreadable name: fall back to opening the entry
        return None
    if options.get("variables"):
        found &= set(options["variables"])
    return {cmip.CMIP_TO_CANONICAL[v] for v in found if v in cmip.CMIP_TO_CANONICAL}


def supplied(cat: Any, entry: str) -> set[str]:
    """Canonical variables the scenario entry ``entry`` of catalog ``cat`` can supply,
    including ``swvl1..4`` when it gives ``mrso`` (split on the reanalysis)."""
    from permaplug.core.plugins import get_source

    e = cat.entry(entry)
    source = get_source(e.plugin)(**e.options)
    names: set[str] | None = None
    provides = getattr(source, "provides", None)
    if callable(provides):
        names = {getattr(v, "name", str(v)) for v in provides()}
    elif e.plugin == "cmip":
        names = _cmip_names(dict(e.options))
    if names is None:  # no declaration: open it (lazy readers read little)
        names = {str(v) for v in cat.open(entry).data_vars}
    if "mrso" in names:
        names |= set(SOIL_WATER)
    return names


def scenario_entry(cat: Any, source: str | None = None) -> str:
    """The catalog's scenario entry (plugin or entry ``source``, default ``cmip``, else the
    first with role ``scenario``)."""
    try:
        return cat.find(role="scenario", source=source or "cmip")
    except CatalogError:
        if source is not None:
            raise
        return cat.find(role="scenario")


def check_supply(catalog: str | Path | None, dynamic: Sequence[str], how_to_drop: str,
                 source: str | None = None) -> None:
    """ConfigError (one line) when the scenario entry cannot supply a variable the run's
    dynamic inputs ``dynamic`` need; ``how_to_drop(missing, supplied)`` says how to leave them
    out. Catalogs without a scenario entry are not checked here (projecting says so)."""
    from permaplug.core.catalog import load_catalog
    from permaplug.projection.tables import scenario_variables

    cat = load_catalog(catalog)
    try:
        name = scenario_entry(cat, source)
    except CatalogError:
        return
    have = supplied(cat, name)
    need = scenario_variables(list(dynamic))
    missing = [v for v in need if v not in have]
    if not missing:
        return
    plugin = cat.entry(name).plugin
    gives = ", ".join(sorted(have)) or "nothing"
    raise ConfigError(
        f"the run cannot be projected: scenario entry {name!r} ({plugin}) supplies {gives}, "
        f"but the run's inputs need {', '.join(missing)} from it; "
        f"{how_to_drop(missing, sorted(have))}, or run with --no-project")
