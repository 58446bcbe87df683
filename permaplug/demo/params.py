"""The emulator's physically uncertain parameters, one named set per demo data version.

Version ``"1"`` is the emulator as first built (hand-set values); version ``"2"`` holds the values
calibrated against the Toolik soil-temperature record (``permaplug demo calibrate``, see
:mod:`permaplug.demo.calibrate` and docs/demo-data.md), each inside the published range given in
:data:`RANGES`. Version ``"3"`` is version 2's emulator (same parameters, same reanalysis file)
whose scenario-truth files also carry every ERA5-Land variable (:data:`FULL_TRUTH_FROM`). Old versions stay here unchanged so an old demo can be rebuilt by name
(``permaplug demo build --version 1``) and old runs stay comparable.

Every field is a scalar; :meth:`EmulatorParams.tile` / the emulator also accept per-cell arrays
(the calibration runs many parameter sets side by side as columns).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from permaplug.core.errors import ConfigError


@dataclass(frozen=True)
class EmulatorParams:
    """Uncertain surface and near-surface parameters of the soil emulator.

    * ``snow_density_taiga`` / ``snow_density_tundra``: snow density (kg m-3) south of 66 N and
      north of 70 N (linear in between).
    * ``snow_k_factor``: multiplier on the Sturm et al. (1997) density-conductivity regression.
    * ``n_thaw_mineral`` / ``n_thaw_organic``: summer (thawing) n-factor of snow-free thawing
      ground, ``n = n_thaw_mineral - n_thaw_organic * v_om`` (``v_om`` the organic share of the
      top layer's solids).
    * ``organic_thickness`` (m): an explicit moss/peat layer on top of the mineral column (0 =
      none, as in version 1) with bulk conductivities ``k_organic_thawed`` / ``k_organic_frozen``
      (W m-1 K-1) and water content ``organic_theta`` (m3 m-3).
    * ``ddf``: degree-day melt factor (mm K-1 d-1).
    """

    snow_density_taiga: float = 300.0
    snow_density_tundra: float = 380.0
    snow_k_factor: float = 1.0
    n_thaw_mineral: float = 1.05
    n_thaw_organic: float = 0.45
    organic_thickness: float = 0.0
    k_organic_thawed: float = 0.25
    k_organic_frozen: float = 0.8
    organic_theta: float = 0.45
    ddf: float = 3.0

    def snow_density(self, lat: np.ndarray) -> np.ndarray:
        """Snow density (kg m-3) at latitudes ``lat`` (deg): taiga value up to 66 N, tundra value
        from 70 N, linear in between."""
        ramp = np.clip((np.asarray(lat, float) - 66.0) / 4.0, 0.0, 1.0)
        return self.snow_density_taiga + (self.snow_density_tundra - self.snow_density_taiga) * ramp

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def with_values(self, **values: float) -> EmulatorParams:
        """A copy with some fields replaced (unknown names are a :class:`ConfigError`)."""
        unknown = set(values) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown emulator parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, **values)


RANGES: dict[str, tuple[float, float, str]] = {
    "snow_density_tundra": (
        200.0, 400.0,
        ("tundra snow (wind slab over depth hoar) 200-400 kg m-3: Sturm, Holmgren & Liston (1995) "
        "J. Climate 8:1261, snow classes; Sturm et al. (1997)")),
    "snow_k_factor": (
        0.6, 1.4,
        ("scatter of the measured effective conductivities about the Sturm et al. (1997) J. "
        "Glaciol. 43:26 density regression (depth hoar low, wind slab high)")),
    "ddf": (
        2.0, 6.0,
        ("degree-day factor of snow melt, mm K-1 d-1: Hock (2003) J. Hydrol. 282:104 (review of "
        "measured snow factors)")),
    "n_thaw_mineral": (
        0.7, 1.3,
        ("thawing n-factors 0.7-1.3 of tundra surfaces: Klene et al. (2001) Arct. Antarct. Alp. "
        "Res. 33:140 (Kuparuk basin); Karunaratne & Burn (2004) Can. J. Earth Sci. 41:1437; "
        "Kade, Romanovsky & Walker (2006) Permafrost Periglac. Process. 17")),
    "organic_thickness": (
        0.0, 0.25,
        ("moss + organic horizon of moist tussock tundra 0-25 cm: Bockheim et al. (1998) Arct. "
        "Alp. Res. 30:166; Kade et al. (2006)")),
    "k_organic_thawed": (
        0.1, 0.5,
        ("moss/peat, thawed, dry to saturated: O'Donnell et al. (2009) Soil Sci. 174:646; Kujala, "
        "Seppala & Holappa (2008) Cold Reg. Sci. Technol. (0.23-0.50)")),
    "k_organic_frozen": (
        0.4, 1.5,
        ("peat, frozen: Kujala et al. (2008) 0.43-1.49 W m-1 K-1; Farouki (1981) CRREL Monograph "
        "81-1")),
    "organic_theta": (
        0.2, 0.7,
        ("water content of the moss/organic horizon, dry hummocks to wet troughs: Hinkel, "
        "Paetzold, Nelson & Bockheim (2001) Global Planet. Change 29:293 (Barrow); O'Donnell et "
        "al. (2009)")),
}
"""Published ranges (low, high, source) of the calibrated parameters."""

VERSIONS: dict[str, EmulatorParams] = {
    "1": EmulatorParams(),
    # `permaplug demo calibrate --obs <Toolik EDC 3-hour export>` (differential evolution,
    # popsize 8, 25 generations, seed 0; Toolik 1989-2012), rounded to 3 significant digits
    "2": EmulatorParams(snow_density_tundra=255.0, snow_k_factor=1.12, ddf=5.86,
                        n_thaw_mineral=1.24, organic_thickness=0.173, k_organic_thawed=0.45,
                        k_organic_frozen=0.414, organic_theta=0.369),
    # version 2's emulator; the truth files now carry every ERA5-Land variable (the forcing the
    # truth run used), not only t2m, tp and stl1..4 (see FULL_TRUTH_FROM)
    "3": EmulatorParams(snow_density_tundra=255.0, snow_k_factor=1.12, ddf=5.86,
                        n_thaw_mineral=1.24, organic_thickness=0.173, k_organic_thawed=0.45,
                        k_organic_frozen=0.414, organic_theta=0.369),
}
"""Parameter set of each demo data version (never edit an existing entry: add a version); the
default one is :data:`permaplug.demo.cache.DEMO_VERSION`."""


FULL_TRUTH_FROM = 3
"""First demo version whose scenario-truth files hold every ERA5-Land variable of the reanalysis
file (earlier ones: ``t2m``, ``tp``, ``stl1..4``)."""


def full_truth(version: str) -> bool:
    """True when demo ``version``'s truth files carry the full ERA5-Land forcing."""
    params_for(version)
    return int(version) >= FULL_TRUTH_FROM


def params_for(version: str) -> EmulatorParams:
    """The parameter set of demo data ``version`` (a :class:`ConfigError` if unknown)."""
    try:
        return VERSIONS[str(version)]
    except KeyError:
        raise ConfigError(f"unknown demo version {version!r}; known: "
                          f"{', '.join(sorted(VERSIONS))}") from None
