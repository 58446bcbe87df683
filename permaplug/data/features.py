"""Input features of a run: the paper's default selection, checking a selection against what
the sources declare, and computing derived features (plugins) on a table.

A run selects its inputs by name (``permaplug run --features a,b,c``). A name is either a
variable a source declares (``t2m``, ``lith_water``...) or a derived feature a plugin registers
(``month_sin``, ``z``...), whose own inputs are again such names. :func:`resolve` checks a
selection against the declarations of the catalog entries the run reads, before any data is
read; :func:`add_features` computes derived features with the plugins' own code, the same for
the historical table and for every scenario table.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from permaplug.core import schema
from permaplug.core.errors import DataError, FeatureError
from permaplug.core.variables import Variable

if TYPE_CHECKING:  # names and checks import no xarray; computing features does
    import xarray as xr

PAPER_FORCING: tuple[str, ...] = ("t2m", "skt", "tp", "sf", "strd", "ssrd", "slhf", "sshf")
"""The paper's per-month forcing inputs (ERA5-Land names)."""
PAPER_CALENDAR: tuple[str, ...] = ("year", "month_sin", "month_cos")
PAPER_DYNAMIC: tuple[str, ...] = PAPER_FORCING + schema.SOIL_WATER + PAPER_CALENDAR
"""The paper's monthly model inputs, in order; the scenario signal z follows when enabled."""
PAPER_STATIC: tuple[str, ...] = (
    tuple(f"lith_{c}" for c in schema.LITHOLOGY_CLASSES)
    + tuple(f"bdod_l{i}" for i in range(1, schema.N_LAYERS + 1))
    + tuple(f"soc_l{i}" for i in range(1, schema.N_LAYERS + 1))
)
"""The paper's static inputs (``usgs-lithology`` and ``openlandmap``), in table order. A run's
default static inputs are every static variable its table holds, which for the paper's catalog
are these."""
SIGNAL = "z"
"""The scenario signal: one value per window (z at the window's last month)."""
GRID_STATIC: tuple[str, ...] = ("lat",)
"""Per-cell coordinates that are static inputs in gridded mode only."""
SCENARIO_FEATURES: tuple[str, ...] = PAPER_FORCING + schema.SOIL_WATER
"""The dynamic inputs a bias-corrected scenario continues (the paper's)."""


def paper_features(use_z: bool = True) -> tuple[str, ...]:
    """The paper's dynamic inputs in order (static ones: every static variable of the table)."""
    return PAPER_DYNAMIC + ((SIGNAL,) if use_z else ())


def _registry(reg: Any = None) -> Any:
    if reg is not None:
        return reg
    from permaplug.core.plugins import get_registry

    return get_registry()


def feature_classes(reg: Any = None) -> dict[str, type]:
    """Registered derived features by name (conflicting names left out)."""
    reg = _registry(reg)
    bad = reg.conflicting("feature")
    return {n: reg.get("feature", n) for n in reg.names("feature") if n not in bad}


@dataclass
class Selection:
    """A checked selection: base variables to read, derived features in computing order."""

    dynamic: list[str] = field(default_factory=list)
    static: list[str] = field(default_factory=list)
    base: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.dynamic + self.static


def _kind(name: str, provided: Mapping[str, Variable], feats: Mapping[str, type]) -> str:
    if name in provided:
        return provided[name].kind
    return feats[name].kind


def resolve(names: Sequence[str], provided: Mapping[str, Variable], reg: Any = None,
            where: str = "the catalog") -> Selection:
    """Check ``names`` against ``provided`` (name -> variable the run's sources declare) and the
    registered derived features; return what to read and what to compute, in order.

    FeatureError (one line) for a name nothing provides, a derived feature whose inputs no
    source provides, a target asked for as an input, or a dependency cycle.
    """
    reg = _registry(reg)
    feats = feature_classes(reg)
    sel = Selection()
    done: set[str] = set()

    def need(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            raise FeatureError(f"feature {chain[0]!r}: its inputs form a cycle "
                               f"({' -> '.join((*chain, name))})")
        if name in provided:  # a source's own variable wins over a feature of the same name
            if name not in sel.base:
                sel.base.append(name)
        elif name in feats:
            for dep in feats[name].inputs:
                if dep not in provided and dep not in feats:
                    raise FeatureError(
                        f"feature {name!r} needs {dep!r}, which no source in {where} provides"
                        + _declared_elsewhere(dep, reg))
                need(dep, (*chain, name))
            sel.derived.append(name)
        else:
            raise FeatureError(f"feature {name!r}: no source in {where} and no derived feature "
                               f"provides it{_declared_elsewhere(name, reg)}; available: "
                               f"{', '.join(sorted({*provided, *feats}))}")
        done.add(name)

    for name in dict.fromkeys(names):
        if name in reg.variable_conflicts():
            reg.variable(name)  # VariableConflictError naming both declarations
        need(name, ())
        kind = _kind(name, provided, feats)
        if kind == "target":
            raise FeatureError(f"feature {name!r} is a target (soil temperature), not an input")
        (sel.static if kind == "static" else sel.dynamic).append(name)
    return sel


def _declared_elsewhere(name: str, reg: Any) -> str:
    """' (declared by source 'x' (dist), not in this catalog)' or a reinstall hint."""
    try:
        return f" (declared by {reg.declared_by(name)}, which this catalog does not use)"
    except KeyError:
        if name in paper_features():
            return (" (a built-in: reinstall permaplug, e.g. 'pip install -e .', so its entry "
                    "points are current)")
        return ""


def provided_by(entries: Iterable[tuple[str, Iterable[Variable]]]) -> dict[str, Variable]:
    """Union of ``(entry name, variables it provides)`` pairs, by variable name.

    VariableConflictError naming both entries when two give one variable in different units.
    """
    from permaplug.core.variables import Declared, conflict_error, merge

    ok, bad = merge(Declared(v, f"entry {name!r}") for name, variables in entries
                    for v in variables)
    if bad:
        name, both = next(iter(bad.items()))
        raise conflict_error(name, both)
    return {k: d.variable for k, d in ok.items()}


# --- computing ---------------------------------------------------------------------------------
def _spatial_dims(ds: xr.Dataset) -> list[str]:
    return [d for d in ("band", "cell", "point", "site") if d in ds.dims]


def compute_feature(ds: xr.Dataset, feature: Any) -> xr.DataArray:
    """Run one feature instance on ``ds``; check the result; name it and set CF attributes."""
    import xarray as xr

    missing = [v for v in feature.inputs if v not in ds]
    if missing:
        raise DataError(f"feature {feature.name!r} needs {', '.join(map(repr, missing))}, not in "
                        "the table")
    out = feature.compute(ds)
    if not isinstance(out, xr.DataArray):
        raise DataError(f"feature {feature.name!r}: compute() returned "
                        f"{type(out).__name__}, not an xarray.DataArray")
    if feature.kind == "dynamic" and "time" not in out.dims:
        raise DataError(f"feature {feature.name!r}: result has dims {out.dims}; a monthly "
                        "feature needs a 'time' dim")
    extra = set(out.dims) - {"time", *_spatial_dims(ds), "scenario"}
    if extra:
        raise DataError(f"feature {feature.name!r}: result has unexpected dims {sorted(extra)}")
    keep = {c for c in out.coords if c in out.dims}
    out = out.drop_vars([c for c in out.coords if c not in keep])
    out.name = feature.name
    return out.assign_attrs({**out.attrs, **feature.variable().cf_attrs()})


def add_features(ds: xr.Dataset, names: Sequence[str], states: Mapping[str, dict] | None = None,
                 fit_years: tuple[int, int] | None = None, window: int = schema.WINDOW,
                 reg: Any = None, broadcast: bool = False) -> tuple[xr.Dataset, dict[str, dict]]:
    """``ds`` with every derived feature among ``names`` (and the derived features they need)
    that ``ds`` lacks, computed by its plugin; plus the states of the fitted features.

    A feature that learns from the training years uses ``states[name]``; without one it is fit
    on ``ds`` over ``fit_years`` (DataError when neither is given). ``broadcast``: give each
    feature the spatial dims of ``ds`` (dims ``(time, unit)``, like the table's variables).
    """
    feats = feature_classes(reg)
    states = dict(states or {})
    new_states: dict[str, dict] = {}
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in ds or name in order or name not in feats or name in chain:
            return
        for dep in feats[name].inputs:
            visit(dep, (*chain, name))
        order.append(name)

    for name in names:
        visit(name, ())
    for name in order:
        cls = feats[name]
        feature = cls(states.get(name))
        if cls.needs_fit() and name not in states:
            if fit_years is None:
                raise DataError(f"feature {name!r} needs the training years' statistics, which "
                                "the run does not hold")
            feature.fit(ds, tuple(fit_years), window)
        if cls.needs_fit():
            new_states[name] = dict(feature.state)
        da = compute_feature(ds, feature)
        if broadcast and feature.kind == "dynamic":
            spatial = _spatial_dims(ds)
            if spatial and not set(spatial) & set(da.dims):
                da = da.broadcast_like(ds[spatial[0]])
                da = da.transpose("time", *[d for d in da.dims if d != "time"])
        ds = ds.assign({name: da})
    return ds, new_states


def derived_names(names: Iterable[str], reg: Any = None) -> list[str]:
    """The names among ``names`` that are registered derived features."""
    feats = feature_classes(reg)
    return [n for n in names if n in feats]
