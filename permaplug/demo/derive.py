"""All monthly variables of the demo from the forcing and the emulator's output.

``era5land_fields`` gives the reanalysis side in canonical units (degC, mm per month, W m-2
means, m3 m-3, turbulent fluxes positive downward); ``model_fields`` the climate-model side in
CMIP units and signs (K, kg m-2 s-1, W m-2, upward-positive hfls/hfss, kg m-2). The file
writers convert to each provider's storage conventions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from permaplug.core import schema
from permaplug.demo import surface as S
from permaplug.demo.emulator import MonthlyOutput
from permaplug.demo.forcing import CellForcing
from permaplug.demo.soil import Soil

# emulated IPSL-CM5A-MR biases of the derived fields (tas and pr carry the model's REAL biases)
MODEL_RSDS_FACTOR = 1.08  # too little cloud
MODEL_RLDS_OFFSET = -12.0  # W m-2: too dry/cold an Arctic atmosphere
MODEL_MRSO_BASE, MODEL_MRSO_RANGE = 180.0, 260.0  # kg m-2, a 2 m bucket


def mid_month_doy(time: pd.DatetimeIndex) -> np.ndarray:
    """Day of year of each month's middle (nt,)."""
    return (time.day_of_year + (time.days_in_month - 1) / 2.0).to_numpy(float)


def radiation(lat: np.ndarray, time: pd.DatetimeIndex, t2m: np.ndarray, d2m: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cloudiness, ssrd and strd (W m-2), each (nt, n), at latitudes ``lat`` (n,)."""
    cloud = S.cloud_fraction(t2m, d2m)
    ssrd = S.shortwave_down(lat[None, :], mid_month_doy(time)[:, None], cloud)
    strd = S.longwave_down(t2m, d2m, cloud)
    return cloud, ssrd, strd


def era5land_fields(lat: np.ndarray, forcing: CellForcing, out: MonthlyOutput, soil: Soil,
                    bucket: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every ERA5-Land variable on cells, canonical units, each (nt, n) (stl/swvl per layer).

    Every variable is a function of its month's inputs, except the soil-water bucket, which
    starts from ``bucket`` (n,) mm when given (else 60 % full). Private keys: ``_days`` (days in
    each month, (nt, n)) and ``_bucket`` (the bucket's water after the last month, to continue
    the series: the fields of two consecutive periods equal those of both at once)."""
    t2m, d2m, tp = forcing.t2m, forcing.d2m, forcing.tp
    days = forcing.time.days_in_month.to_numpy(float)[:, None]
    sf = tp * S.snowfall_share(t2m)
    _, ssrd, strd = radiation(lat, forcing.time, t2m, d2m)
    snow_cover = np.clip(out.snow_depth / 0.10, 0.0, 1.0)
    skt = S.skin_temperature(t2m, ssrd, strd, snow_cover)
    bucket_end = np.empty(t2m.shape[1])
    wetness = S.bucket_wetness(tp - sf + out.melt, S.potential_evaporation(t2m, ssrd),
                               soil.bucket_mm, start=bucket, end=bucket_end)
    wet = wetness * out.liquid[:, 0] * (1 - snow_cover)
    sshf, slhf = S.turbulent_fluxes(t2m, d2m, skt, ssrd, strd, snow_cover, wet)
    fields = {"t2m": t2m, "skt": skt, "tp": tp, "sf": sf, "strd": strd, "ssrd": ssrd,
              "slhf": slhf, "sshf": sshf}
    damp = (0.3, 0.25, 0.15, 0.08)  # how much each layer's water follows the bucket
    for i in range(schema.N_LAYERS):
        total = soil.theta[i] * (1.0 + damp[i] * (wetness - 0.6) / 0.4)
        total = np.minimum(total, soil.porosity[i])
        fields[f"swvl{i + 1}"] = total * out.liquid[:, i]  # the liquid part of the soil water
        fields[f"stl{i + 1}"] = out.stl[:, i]
    fields["sd"] = out.swe  # snow depth water equivalent, mm (ERA5-Land writes m)
    fields["_days"] = np.broadcast_to(days, t2m.shape)
    fields["_bucket"] = bucket_end
    return fields


def model_fields(lat: np.ndarray, time: pd.DatetimeIndex, tas: np.ndarray, pr_mm_day: np.ndarray,
                 dew_depression: np.ndarray) -> dict[str, np.ndarray]:
    """CMIP5 Amon/Lmon variables on model cells, CMIP units and signs, each (nt, n).

    ``tas`` degC, ``pr_mm_day`` mm/day (the real model's box means spread over cells),
    ``dew_depression`` (12,) K: the observed climatological t2m - d2m per calendar month (the
    model gets its humidity from it). Snow: a monthly degree-day pack; soil water: the bucket.
    """
    days = time.days_in_month.to_numpy(float)[:, None]
    d2m = tas - dew_depression[time.month.to_numpy() - 1][:, None]
    pr_month = pr_mm_day * days
    prsn_month = pr_month * S.snowfall_share(tas)
    _, rsds, rlds = radiation(lat, time, tas, d2m)
    rsds = rsds * MODEL_RSDS_FACTOR
    rlds = rlds + MODEL_RLDS_OFFSET
    swe, melt = S.degree_day_snow(prsn_month, tas, days[:, 0])
    snow_cover = np.clip(swe / 30.0, 0.0, 1.0)
    ts = S.skin_temperature(tas, rsds, rlds, snow_cover)
    wetness = S.bucket_wetness(pr_month - prsn_month + melt, S.potential_evaporation(tas, rsds),
                               np.full(tas.shape[1], 150.0))
    liquid = np.clip(0.5 + ts / 4.0, 0.1, 1.0)
    sshf_down, slhf_down = S.turbulent_fluxes(tas, d2m, ts, rsds, rlds, snow_cover,
                                              wetness * liquid * (1 - snow_cover))
    seconds = days * 86400.0
    return {
        "tas": tas + 273.15, "ts": ts + 273.15,
        "pr": pr_month / seconds, "prsn": prsn_month / seconds,  # kg m-2 s-1
        "rlds": rlds, "rsds": rsds,
        "hfls": -slhf_down, "hfss": -sshf_down,  # CMIP: upward positive
        "mrsos": 100.0 * 0.38 * (0.4 + 0.6 * wetness) * liquid,  # kg m-2 in the top 0.1 m
        "mrso": MODEL_MRSO_BASE + MODEL_MRSO_RANGE * wetness,  # kg m-2, whole column, all phases
    }
