"""Scenario names are data: their order, the continuation scenario and the pair for differences.

permaplug never writes a scenario name in code. Which scenario continues the historical run over
the calibration period (``continuation``) and which two scenarios are compared in differences
(``pair = (low, high)``, reported as ``high - low``) come, in this order of precedence, from

1. options (``--continuation NAME``, ``--scenario-pair LOW,HIGH`` on ``correct``, ``run`` and
   ``project``);
2. the scenario catalog entry's metadata (``continuation: NAME``, ``scenario_pair: [LOW, HIGH]``),
   carried on the opened dataset as the attributes :data:`CONTINUATION_ATTR` and
   :data:`PAIR_ATTR`;
3. a default derived from the names the data hold: the scenarios are ordered by their *forcing
   label* -- the last run of digits in the name, its last two digits read as the radiative
   forcing in W m-2 (``..26`` -> 2.6, ``...585`` -> 8.5, ``...119`` -> 1.9); names without digits
   come after those with, by name. The pair is (first, last) of that order and the continuation
   is the last one (the highest forcing: observed emissions since 2005 followed the
   high-emission pathways most closely, and the pathways barely differ before the 2030s).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permaplug.core.errors import ConfigError

CONTINUATION_ATTR = "scenario_continuation"
"""Dataset attribute: the continuation scenario named by the catalog entry's metadata."""
PAIR_ATTR = "scenario_pair"
"""Dataset attribute: ``"LOW,HIGH"`` named by the catalog entry's metadata."""

_DIGITS = re.compile(r"(\d+)")


def forcing_label(name: str) -> float | None:
    """The radiative forcing (W m-2) a scenario name states, or None if it has no digits.

    The last run of digits, its last two digits as ``X.Y`` (``"a26"`` -> 2.6,
    ``"b585"`` -> 8.5, ``"c534-over"`` -> 3.4).
    """
    runs = _DIGITS.findall(str(name))
    if not runs:
        return None
    digits = runs[-1][-2:]
    return int(digits) / 10.0 if len(digits) == 2 else float(digits)


def ordered(names: Iterable[str]) -> list[str]:
    """Scenario names by forcing label (ascending), names without one last (by name)."""
    def key(n: str) -> tuple[int, float, str]:
        f = forcing_label(n)
        return (0, f, n) if f is not None else (1, 0.0, n)

    return sorted(dict.fromkeys(str(n) for n in names), key=key)


def parse_pair(text: str | Sequence[str] | None, what: str = "--scenario-pair"
               ) -> tuple[str, str] | None:
    """``"LOW,HIGH"`` (or a two-item list) -> ``(low, high)``; None stays None."""
    if text is None or text == "":
        return None
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)
             if str(p).strip()]
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ConfigError(f"{what} {text!r}: expected two different scenarios LOW,HIGH")
    return str(parts[0]), str(parts[1])


@dataclass(frozen=True)
class ScenarioRoles:
    """The continuation scenario and the (low, high) pair of one scenario data set.

    ``pair`` is None when the data hold a single scenario (no difference to report)."""

    continuation: str
    pair: tuple[str, str] | None

    def difference_key(self, variable: str = "stl1", units: str = "degC") -> str | None:
        """``"<high>_minus_<low>_<variable>_<units>"`` (the summary.json key), or None."""
        if self.pair is None:
            return None
        return f"{self.pair[1]}_minus_{self.pair[0]}_{variable}_{units}"


def resolve(names: Iterable[str], continuation: str | None = None,
            pair: str | Sequence[str] | None = None,
            attrs: Mapping[str, Any] | None = None) -> ScenarioRoles:
    """The :class:`ScenarioRoles` for the scenarios ``names``.

    ``continuation`` / ``pair``: explicit choices (options); ``attrs``: the scenario dataset's
    attributes (the catalog entry's metadata, see :data:`CONTINUATION_ATTR`). Explicit choices
    win over metadata, metadata over the default of the module docstring. A name the data do
    not hold is a ConfigError naming where it came from and the scenarios there are.
    """
    have = ordered(names)
    if not have:
        raise ConfigError("the scenario data hold no scenario")
    attrs = attrs or {}
    if continuation:
        cont, cont_from = str(continuation), "--continuation"
    elif attrs.get(CONTINUATION_ATTR):
        cont, cont_from = str(attrs[CONTINUATION_ATTR]), "the catalog entry's metadata.continuation"
    else:
        cont, cont_from = have[-1], ""
    if cont not in have:
        raise ConfigError(f"continuation scenario {cont!r} ({cont_from}) not in the scenario "
                          f"data (have {', '.join(have)})")
    if pair:
        chosen, pair_from = parse_pair(pair), "--scenario-pair"
    elif attrs.get(PAIR_ATTR):
        chosen = parse_pair(attrs[PAIR_ATTR], "metadata.scenario_pair")
        pair_from = "the catalog entry's metadata.scenario_pair"
    else:
        chosen, pair_from = ((have[0], have[-1]) if len(have) > 1 else None), ""
    if chosen is not None:
        missing = [s for s in chosen if s not in have]
        if missing:
            raise ConfigError(f"scenario pair {','.join(chosen)} ({pair_from}): "
                              f"{', '.join(missing)} not in the scenario data "
                              f"(have {', '.join(have)})")
    return ScenarioRoles(cont, chosen)


def metadata_attrs(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Dataset attributes for a catalog entry's ``continuation`` / ``scenario_pair`` metadata."""
    out: dict[str, str] = {}
    if metadata.get("continuation"):
        out[CONTINUATION_ATTR] = str(metadata["continuation"])
    if metadata.get("scenario_pair"):
        low, high = parse_pair(metadata["scenario_pair"], "metadata.scenario_pair") or ("", "")
        out[PAIR_ATTR] = f"{low},{high}"
    return out


PALETTE: tuple[str, ...] = ("#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#66a61e", "#e6ab02",
                            "#a6761d", "#666666")


def colours(names: Iterable[str], palette: Sequence[str] = PALETTE) -> dict[str, str]:
    """One colour per scenario, assigned in :func:`ordered` order (stable for a name set)."""
    return {n: palette[i % len(palette)] for i, n in enumerate(ordered(names))}
