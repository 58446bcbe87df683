"""Per-variable bias-correction rules: additive or multiplicative, thresholds and bounds.

* temperatures (degC), radiation and turbulent heat fluxes (J m-2 per month): additive;
* precipitation and snowfall (mm per month): multiplicative, with frequency adaptation of dry
  months (below ``DRY_MONTH``) and zeros jittered below ``JITTER`` before training (a ratio of
  zeros is undefined); corrected values below ``JITTER`` are set to 0;
* soil water fractions (m3 m-3): additive, clipped to [0, 1];
* downward radiation and precipitation are clipped at 0.

A variable with no rule (not a canonical forcing or soil-water name) is corrected additively
with no bounds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

ADDITIVE = "+"
MULTIPLICATIVE = "*"

DRY_MONTH = "1 mm"
"""A month with less than this total (precipitation or snowfall) counts as dry."""
JITTER = "0.01 mm"
"""Zeros are replaced by uniform noise below this before training multiplicative factors."""


@dataclass(frozen=True)
class Rule:
    """How one variable is corrected."""

    kind: str = ADDITIVE
    lower: float | None = None
    upper: float | None = None
    adapt_freq_thresh: str | None = None
    jitter_under: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Rule:
        return cls(**{k: d.get(k) for k in ("kind", "lower", "upper", "adapt_freq_thresh",
                                           "jitter_under")})


_PRECIP = Rule(MULTIPLICATIVE, lower=0.0, adapt_freq_thresh=DRY_MONTH, jitter_under=JITTER)
RULES: dict[str, Rule] = {
    "t2m": Rule(), "skt": Rule(),
    "strd": Rule(lower=0.0), "ssrd": Rule(lower=0.0),
    "slhf": Rule(), "sshf": Rule(),
    "tp": _PRECIP, "sf": _PRECIP,
    **{f"swvl{i}": Rule(lower=0.0, upper=1.0) for i in range(1, 5)},
}


def rule_for(name: str) -> Rule:
    """The rule of a canonical variable (additive, unbounded when the name has no rule)."""
    return RULES.get(name, Rule())


def threshold_value(quantity: str | None) -> float:
    """The number of a quantity string such as ``"0.01 mm"`` (0 when None)."""
    return float(quantity.split()[0]) if quantity else 0.0


def apply_bounds(da: xr.DataArray, rule: Rule) -> xr.DataArray:
    """Clip to the rule's bounds; multiplicative variables below the jitter threshold become 0."""
    out = da
    if rule.kind == MULTIPLICATIVE and rule.jitter_under:
        out = out.where((out >= threshold_value(rule.jitter_under)) | out.isnull(), 0.0)
    if rule.lower is not None or rule.upper is not None:
        lo = -np.inf if rule.lower is None else rule.lower
        hi = np.inf if rule.upper is None else rule.upper
        out = out.clip(lo, hi)
    out.attrs = dict(da.attrs)
    return out
