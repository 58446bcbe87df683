"""Derived atmospheric and surface variables of the emulator (monthly, vectorised).

Every function takes arrays that broadcast together (typically (time, cell)) and documents its
units. These are deliberately simple, textbook parameterisations; see docs/demo-data.md.
"""
from __future__ import annotations

import numpy as np

SIGMA = 5.670374419e-8  # W m-2 K-4, Stefan-Boltzmann
SOLAR_CONSTANT = 1361.0  # W m-2
T0 = 273.15
SNOW_ALBEDO, GROUND_ALBEDO = 0.78, 0.16
CLEAR_SKY_TRANSMISSIVITY = 0.74
BULK_SENSIBLE = 12.0  # W m-2 K-1: rho cp C_H U for a ~4 m/s wind
PRIESTLEY_TAYLOR = 0.65  # share of the available energy evaporated from a wet, thawed surface


def vapour_pressure(t_c: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (hPa) at ``t_c`` degC (Magnus, WMO 2008)."""
    return 6.112 * np.exp(17.62 * t_c / (243.12 + t_c))


def relative_humidity(t2m: np.ndarray, d2m: np.ndarray) -> np.ndarray:
    """Relative humidity (0..1) from air and dew-point temperatures (degC)."""
    return np.clip(vapour_pressure(np.minimum(d2m, t2m)) / vapour_pressure(t2m), 0.0, 1.0)


def cloud_fraction(t2m: np.ndarray, d2m: np.ndarray) -> np.ndarray:
    """Cloudiness (0.15..0.95) rising with near-surface relative humidity (empirical ramp)."""
    return np.clip(0.25 + 1.4 * (relative_humidity(t2m, d2m) - 0.6), 0.15, 0.95)


def toa_insolation(lat: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily-mean top-of-atmosphere insolation (W m-2) at latitude ``lat`` (deg) on day ``doy``.

    Standard astronomy: declination ``23.44 sin(2 pi (284 + doy) / 365)`` deg, sunset hour angle
    ``arccos(-tan(lat) tan(decl))`` (0 in polar night, pi in polar day), eccentricity factor.
    """
    phi = np.deg2rad(lat)
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    ecc = 1 + 0.033 * np.cos(2 * np.pi * doy / 365.0)
    cos_h = np.clip(-np.tan(phi) * np.tan(decl), -1.0, 1.0)
    h0 = np.arccos(cos_h)
    return SOLAR_CONSTANT / np.pi * ecc * (h0 * np.sin(phi) * np.sin(decl)
                                           + np.cos(phi) * np.cos(decl) * np.sin(h0))


def shortwave_down(lat: np.ndarray, doy: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """Surface downward solar radiation (W m-2): TOA x clear-sky transmissivity x (1 - 0.65 c)."""
    return toa_insolation(lat, doy) * CLEAR_SKY_TRANSMISSIVITY * (1.0 - 0.65 * cloud)


def longwave_down(t2m: np.ndarray, d2m: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """Surface downward thermal radiation (W m-2).

    Clear-sky emissivity of Brutsaert (1975) ``1.24 (e/T)^(1/7)`` (e hPa, T K), cloud cover as
    in Crawford & Duchon (1999): ``eps = c + (1 - c) eps_clear``.
    """
    e = vapour_pressure(np.minimum(d2m, t2m))
    tk = t2m + T0
    eps = cloud + (1.0 - cloud) * 1.24 * (e / tk) ** (1.0 / 7.0)
    return eps * SIGMA * tk**4


def snowfall_share(t2m: np.ndarray) -> np.ndarray:
    """Share of monthly precipitation falling as snow: a logistic ramp centred on +1 degC.

    Monthly means hide daily variability, so the ramp is wide (scale 1.8 K): a month at -5 degC
    is ~96 % snow, at +5 degC ~10 %.
    """
    return 1.0 / (1.0 + np.exp((t2m - 1.0) / 1.8))


def skin_temperature(t2m: np.ndarray, ssrd: np.ndarray, strd: np.ndarray, snow_cover: np.ndarray
                     ) -> np.ndarray:
    """Surface skin temperature (degC): air temperature plus a radiative offset.

    ``t2m + 0.012 (absorbed solar) - 0.04 (sigma T^4 - strd)``: warmer than the air under sun,
    colder under a clear winter sky (net long-wave loss), albedo from the snow cover (0..1).
    """
    albedo = snow_cover * SNOW_ALBEDO + (1 - snow_cover) * GROUND_ALBEDO
    lw_loss = SIGMA * (t2m + T0) ** 4 - strd
    return t2m + 0.012 * (1 - albedo) * ssrd - 0.04 * lw_loss


def turbulent_fluxes(t2m: np.ndarray, d2m: np.ndarray, skt: np.ndarray, ssrd: np.ndarray,
                     strd: np.ndarray, snow_cover: np.ndarray, wet: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sensible and latent heat fluxes (W m-2, ECMWF sign: positive DOWNWARD into the surface).

    Sensible: bulk formula ``H = 12 (skt - t2m)`` (upward when the skin is warmer).
    Latent: Priestley-Taylor-like ``LE = 0.65 wet max(Rn, 0) + 2 (1 - RH)`` with ``Rn`` the
    surface net radiation and ``wet`` (0..1) the share of liquid water available (frozen ground
    and snow evaporate little). Both are returned downward-positive: ``(-H, -LE)``.
    """
    albedo = snow_cover * SNOW_ALBEDO + (1 - snow_cover) * GROUND_ALBEDO
    rn = (1 - albedo) * ssrd + strd - 0.98 * SIGMA * (skt + T0) ** 4
    sensible = BULK_SENSIBLE * (skt - t2m)
    latent = PRIESTLEY_TAYLOR * wet * np.maximum(rn, 0.0) + 2.0 * (1 - relative_humidity(t2m, d2m))
    return -sensible, -latent


def potential_evaporation(t2m: np.ndarray, ssrd: np.ndarray) -> np.ndarray:
    """Potential evaporation (mm per month) of a thawed surface: a radiation-temperature index,
    ``0.12 ssrd sqrt(max(t2m, 0))`` (ssrd W m-2), capped at 120 mm (about 90 mm in a July
    in interior Alaska, nothing in freezing months)."""
    return np.clip(0.12 * ssrd * np.sqrt(np.clip(t2m, 0.0, None)), 0.0, 120.0)


def bucket_wetness(inflow: np.ndarray, pet: np.ndarray, capacity: np.ndarray,
                   start: np.ndarray | None = None, end: np.ndarray | None = None
                   ) -> np.ndarray:
    """Relative wetness (0..1) of a soil-water bucket, monthly, (nt, ncell).

    ``inflow`` (rain + snowmelt) and ``pet`` in mm per month (nt, ncell); ``capacity`` mm (ncell,).
    Each month: ``W += inflow``; evaporation ``pet W / capacity``; drainage of 30 % of the water
    above 70 % of capacity; ``W`` kept within [5 %, 100 %] of capacity. Starts at 60 %, or at
    ``start`` (ncell,) mm; ``end`` (ncell,), if given, receives ``W`` after the last month, so a
    later call with ``start=end`` continues the series exactly.
    """
    w = 0.6 * capacity if start is None else start
    out = np.empty_like(inflow)
    for m in range(inflow.shape[0]):
        w = w + inflow[m]
        w = w - pet[m] * np.clip(w / capacity, 0.0, 1.0)
        w = w - 0.3 * np.maximum(w - 0.7 * capacity, 0.0)
        w = np.clip(w, 0.05 * capacity, capacity)
        out[m] = w / capacity
    if end is not None:
        end[...] = w
    return out


def degree_day_snow(snowfall: np.ndarray, t2m: np.ndarray, days: np.ndarray, ddf: float = 3.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Monthly snow pack (used on the model grid, where no soil model runs).

    ``snowfall`` mm per month and ``t2m`` degC (nt, n); ``days`` (nt,). Returns the end-of-month
    water equivalent (mm) and the melt (mm per month), each (nt, n).
    """
    swe = np.zeros(snowfall.shape[1])
    swe_out = np.empty_like(snowfall)
    melt_out = np.empty_like(snowfall)
    for m in range(snowfall.shape[0]):
        swe = swe + snowfall[m]
        melt = np.minimum(swe, ddf * np.maximum(t2m[m], 0.0) * days[m])
        swe = swe - melt
        swe_out[m], melt_out[m] = swe, melt
    return swe_out, melt_out
