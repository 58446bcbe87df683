"""Variable declarations: what a source or a derived feature says it provides.

A :class:`Variable` is a name with its units, CF standard name (where one exists), a long name
and a kind (``dynamic``: a monthly input; ``static``: one value per band or cell; ``target``:
a monthly soil temperature the models predict). Sources declare them (``Source.variables`` and
``Source.provides()``), derived features declare one each (``Feature.variable()``); the set of
variables a run can use is the union of those declarations (:func:`merge`). Nothing in core
lists variables: adding one is declaring it in a plugin.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from permaplug.core.errors import VariableConflictError

KINDS: tuple[str, ...] = ("dynamic", "static", "target")


@dataclass(frozen=True)
class Variable:
    """One declared variable.

    ``units`` are udunits strings as in CF (``degC``, ``mm``, ``J m-2``, ``1``);
    ``accumulated`` marks monthly totals (CF ``cell_methods: time: sum``).
    """

    name: str
    units: str
    standard_name: str = ""
    long_name: str = ""
    kind: str = "dynamic"
    accumulated: bool = False

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a variable needs a non-empty name")
        if self.kind not in KINDS:
            raise ValueError(f"variable {self.name!r}: kind {self.kind!r}; use one of "
                             f"{', '.join(KINDS)}")

    def cf_attrs(self) -> dict[str, str]:
        """CF attributes: units, long_name, standard_name (if any), cell_methods (totals)."""
        attrs = {"units": self.units, "long_name": self.long_name or self.name}
        if self.standard_name:
            attrs["standard_name"] = self.standard_name
        if self.accumulated:
            attrs["cell_methods"] = "time: sum (monthly total)"
        return attrs


def same_units(a: str, b: str) -> bool:
    """True when two unit strings name the same unit (spelling variants of one unit agree)."""
    def norm(u: str) -> str:
        u = u.strip().replace("**", "").replace("^", "").replace("°C", "degC")
        return {"deg C": "degC", "celsius": "degC", "degree_Celsius": "degC", "kg/m2": "kg m-2",
                "kg m**-2": "kg m-2", "": "1", "dimensionless": "1"}.get(u, u)
    return norm(a) == norm(b)


@dataclass(frozen=True)
class Declared:
    """A variable and who declared it (e.g. ``"source 'era5land' (permaplug)"``)."""

    variable: Variable
    origin: str


def merge(declarations: Iterable[Declared]) -> tuple[dict[str, Declared],
                                                     dict[str, list[Declared]]]:
    """Union of declarations by name: ``(variables, conflicts)``.

    The first declaration of a name wins; a later one with other units makes the name
    conflicting (``conflicts[name]`` lists every declaration), and the name is left out of
    ``variables``. Declarations that agree on units may differ in their descriptions.
    """
    first: dict[str, Declared] = {}
    conflicts: dict[str, list[Declared]] = {}
    for d in declarations:
        name = d.variable.name
        if name not in first:
            first[name] = d
            continue
        if not same_units(first[name].variable.units, d.variable.units):
            conflicts.setdefault(name, [first[name]]).append(d)
    return {k: v for k, v in first.items() if k not in conflicts}, conflicts


def conflict_error(name: str, decls: list[Declared]) -> VariableConflictError:
    """The error for using a variable declared with different units (names both origins)."""
    parts = [f"{d.variable.units!r} by {d.origin}" for d in decls]
    return VariableConflictError(f"variable {name!r} is declared with different units: "
                                 + " and ".join(parts))
