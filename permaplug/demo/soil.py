"""Emulated static fields (lithology, bulk density, organic carbon) and the soil they make.

The static fields are *emulated* (no real per-cell extracts are available offline): smooth random
fields (seeded) on top of broad, documented geographic trends. They are not decoration: the
emulator's heat capacity, conductivity, porosity, freezing range and summer surface factor are
computed from them, so they carry real signal for the networks to find.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from permaplug.core import schema
from permaplug.demo import heat
from permaplug.demo.cache import DEMO_VERSION
from permaplug.demo.params import EmulatorParams, params_for

OLM_DEPTHS_CM: tuple[int, ...] = (0, 10, 30, 60, 100, 200)
"""OpenLandMap standard depths (cm), where its profiles are given."""

# solid-phase conductivity (W m-1 K-1) of each lithology class (typical rock/sediment values)
K_LITHOLOGY: dict[str, float] = {
    "water": 1.5, "unconsolidated": 2.2, "glacier": 2.1, "volcanic": 1.7, "melange": 2.4,
    "plutonic": 3.0, "sedimentary": 2.6, "metamorphic": 3.2, "unknown": 2.4,
}
K_ORGANIC = 0.25  # W m-1 K-1, organic solids
C_MINERAL, C_ORGANIC = 2.0e6, 2.5e6  # J m-3 K-1 per volume of solids
RHO_MINERAL, RHO_ORGANIC = 2650.0, 1300.0  # kg m-3 particle densities


def smooth_field(lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator, n_waves: int = 16,
                 wavelength: tuple[float, float] = (3.0, 12.0)) -> np.ndarray:
    """A smooth random field (about zero mean, unit variance) at points (deg), resolution-free.

    A sum of ``n_waves`` plane waves with random directions, wavelengths (degrees) and phases,
    so the same seed gives the same field at any grid resolution.
    """
    x = np.asarray(lon, float) * np.cos(np.deg2rad(65.0))
    y = np.asarray(lat, float)
    theta = rng.uniform(0, 2 * np.pi, n_waves)
    k = 2 * np.pi / rng.uniform(*wavelength, n_waves)
    phase = rng.uniform(0, 2 * np.pi, n_waves)
    out = np.zeros(np.broadcast(x, y).shape)
    for th, kk, ph in zip(theta, k, phase):
        out = out + np.cos(kk * (np.cos(th) * x + np.sin(th) * y) + ph)
    return out * np.sqrt(2.0 / n_waves)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((np.asarray(x, float) - lo) / (hi - lo), 0.0, 1.0)


@dataclass
class StaticFields:
    """Emulated static inputs at points: ``lith`` (9, n) shares summing to 1 (order of
    ``schema.LITHOLOGY_CLASSES``), ``bdod`` and ``soc`` (6, n) at :data:`OLM_DEPTHS_CM` in
    kg m-3 and g kg-1 (already quantised as OpenLandMap stores them), ``wetness`` (n,) -1..1."""

    lith: np.ndarray
    bdod: np.ndarray
    soc: np.ndarray
    wetness: np.ndarray


def static_fields(lat: np.ndarray, lon: np.ndarray, seed: int) -> StaticFields:
    """Emulated lithology, bulk density and organic carbon at points ``lat``/``lon`` (n,).

    Trends: unconsolidated Quaternary deposits dominate the North Slope (> 69 N) and the interior
    lowlands; sedimentary rocks the Brooks Range (67.5-69 N); metamorphic rocks the Yukon-Tanana
    upland (east of 150 W, 64-67.5 N); plutonic and volcanic rocks and glaciers the south.
    Organic carbon rises northward (tundra peat) and with wetness; bulk density follows from
    organic matter (Adams 1973 mixing rule).
    """
    rng = np.random.default_rng([seed, 4])
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    north = _ramp(lat, 68.5, 69.8)
    brooks = _ramp(lat, 67.2, 67.8) * (1 - _ramp(lat, 68.8, 69.4))
    upland = _ramp(lon, -152.0, -149.0) * _ramp(lat, 63.8, 64.4) * (1 - _ramp(lat, 67.0, 67.6))
    south = 1 - _ramp(lat, 61.5, 63.0)
    alaska_range = _ramp(lat, 62.6, 63.0) * (1 - _ramp(lat, 63.5, 64.0)) * _ramp(lon, -153, -150)
    west = 1 - _ramp(lon, -161.0, -157.0)
    base = {
        "water": -3.0 + 0.8 * west,
        "unconsolidated": 0.3 + 2.2 * north + 0.8 * west,
        "glacier": -4.5 + 3.0 * alaska_range + 2.0 * south,
        "volcanic": -2.0 + 1.8 * south * west + 0.8 * west,
        "melange": -3.0 + 1.5 * south,
        "plutonic": -0.8 + 1.0 * upland + 0.8 * south,
        "sedimentary": 0.0 + 2.2 * brooks - 0.5 * north,
        "metamorphic": -0.3 + 2.0 * upland,
        "unknown": -3.5,
    }
    logits = np.stack([base[c] + 0.9 * smooth_field(lat, lon, rng)
                       for c in schema.LITHOLOGY_CLASSES])
    lith = np.exp(logits - logits.max(axis=0))
    lith /= lith.sum(axis=0)

    wetness = np.tanh(0.8 * smooth_field(lat, lon, rng) + 0.6 * north + 0.4 * west)
    organic = np.exp(np.log(35.0) + 1.0 * _ramp(lat, 60.0, 70.5) + 0.7 * wetness
                     + 0.35 * smooth_field(lat, lon, rng))  # g kg-1 at the surface
    depth = np.asarray(OLM_DEPTHS_CM, float)[:, None] / 100.0
    soc = organic[None, :] * np.exp(-depth / 0.35) + 4.0  # decays with depth to a mineral floor
    om_pct = 0.1724 * soc  # organic matter, percent (Van Bemmelen factor 1.724)
    bd_min = 1.55 + 0.1 * smooth_field(lat, lon, rng) + 0.08 * depth  # g cm-3
    bdod = 100.0 / (om_pct / 0.244 + (100.0 - om_pct) / bd_min) * 1000.0  # kg m-3
    # as OpenLandMap stores them: bulk density in 10 kg m-3, organic carbon in 5 g kg-1 units
    bdod = np.round(bdod / 10.0) * 10.0
    soc = np.maximum(np.round(soc / 5.0), 1.0) * 5.0
    return StaticFields(lith=lith, bdod=bdod, soc=soc, wetness=wetness)


def olm_layer_weights() -> np.ndarray:
    """(4, 6) weights: ERA5-Land layer means of a profile linear between the OpenLandMap depths
    (constant below 200 cm)."""
    z = np.linspace(0.0, schema.LAYERS[-1][1], 2891)
    d = np.asarray(OLM_DEPTHS_CM, float) / 100.0
    basis = np.stack([np.interp(z, d, np.eye(len(d))[i]) for i in range(len(d))])  # (6, nz)
    w = np.zeros((schema.N_LAYERS, len(d)))
    for j, (top, bot) in enumerate(schema.LAYERS):
        sel = (z >= top) & (z <= bot)
        w[j] = basis[:, sel].mean(axis=1)
    return w / w.sum(axis=1, keepdims=True)


def layer_statics(fields: StaticFields) -> tuple[np.ndarray, np.ndarray]:
    """Bulk density (kg m-3) and organic carbon (g kg-1) per ERA5-Land layer, each (4, n)."""
    w = olm_layer_weights()
    return w @ fields.bdod, w @ fields.soc


@dataclass
class Soil:
    """Per-cell soil derived from the static fields: the heat-model column plus ``porosity``
    and ``theta`` per ERA5-Land layer (4, n), the summer surface factor ``n_thaw`` (n,), the
    bucket capacity ``bucket_mm`` (n,)."""

    column: heat.Column
    porosity: np.ndarray
    theta: np.ndarray
    n_thaw: np.ndarray
    bucket_mm: np.ndarray


ORGANIC_POROSITY = 0.9  # moss and fibric peat
ORGANIC_WIDTH, ORGANIC_F_RES = 1.6, 0.08  # freezing range (K) and residual unfrozen share of peat


def add_organic_layer(col: heat.Column, params: EmulatorParams) -> heat.Column:
    """The column with its top ``params.organic_thickness`` metres replaced by moss/peat.

    A volume only partly inside the layer gets thickness-weighted heat capacities and water, and
    the series (harmonic) mean of the conductivities. Parameters may be scalars or per-cell
    arrays (ncell,). Returns ``col`` itself when the thickness is 0 everywhere.
    """
    h = np.asarray(params.organic_thickness, float)
    if not np.any(h > 0):
        return col
    top, bot = col.faces[:-1, None], col.faces[1:, None]
    share = np.clip((np.minimum(bot, h) - top) / (bot - top), 0.0, 1.0)  # (nz, ncell or 1)
    share = np.broadcast_to(share, col.theta.shape)
    theta_o = np.broadcast_to(np.asarray(params.organic_theta, float), share.shape[1:])
    c_o = (1 - ORGANIC_POROSITY) * C_ORGANIC

    def mix(mineral: np.ndarray, organic) -> np.ndarray:
        return (1 - share) * mineral + share * organic

    def series(mineral: np.ndarray, organic) -> np.ndarray:
        return 1.0 / ((1 - share) / mineral + share / np.asarray(organic, float))

    return heat.Column(
        c_solid=mix(col.c_solid, c_o), theta=mix(col.theta, theta_o),
        k_thawed=series(col.k_thawed, params.k_organic_thawed),
        k_frozen=series(col.k_frozen, params.k_organic_frozen),
        width=mix(col.width, ORGANIC_WIDTH), f_res=mix(col.f_res, ORGANIC_F_RES), faces=col.faces)


def soil_from_statics(fields: StaticFields, params: EmulatorParams | None = None) -> Soil:
    """Thermal and hydraulic properties of every column from its static fields.

    Per layer: organic mass share ``1.724 soc / 1000``; particle density from the organic and
    mineral shares; porosity ``1 - bd / rho_p``; water content = porosity x saturation (wetter
    and more organic soils are wetter); solid conductivity the geometric mean of the lithology
    classes' rock conductivities blended with organic matter; bulk conductivity the geometric
    mean of solids, water or ice, and air (Johansen-type); freezing range wider in organic and
    fine soils. Volumes below 2.89 m take layer 4's properties. ``params`` (default: the current demo version's)
    sets the summer n-factor and an optional explicit moss/peat layer (:func:`add_organic_layer`).
    """
    params = params or params_for(DEMO_VERSION)
    bd, soc = layer_statics(fields)
    f_om = np.clip(1.724 * soc / 1000.0, 0.0, 0.95)
    rho_p = 1.0 / (f_om / RHO_ORGANIC + (1 - f_om) / RHO_MINERAL)
    porosity = np.clip(1.0 - bd / rho_p, 0.25, 0.92)
    v_om = f_om * rho_p / RHO_ORGANIC  # organic share of the solid volume
    saturation = np.clip(0.62 + 0.22 * fields.wetness + 0.25 * v_om, 0.35, 0.97)
    theta = porosity * saturation
    k_min = np.exp(np.tensordot(np.log([K_LITHOLOGY[c] for c in schema.LITHOLOGY_CLASSES]),
                                fields.lith, axes=1))
    k_solid = k_min ** (1 - v_om) * K_ORGANIC**v_om
    air = porosity - theta
    k_thawed = k_solid ** (1 - porosity) * heat.K_WATER**theta * heat.K_AIR**air
    k_frozen = k_solid ** (1 - porosity) * heat.K_ICE**theta * heat.K_AIR**air
    c_solid = (1 - porosity) * ((1 - v_om) * C_MINERAL + v_om * C_ORGANIC)
    width = 0.4 + 1.2 * v_om
    f_res = 0.03 + 0.05 * v_om

    z = 0.5 * (heat.FACES[1:] + heat.FACES[:-1])
    bottoms = np.array([b for _, b in schema.LAYERS])
    layer_of = np.minimum(np.searchsorted(bottoms, z), schema.N_LAYERS - 1)  # (nz,)
    col = heat.Column(
        c_solid=c_solid[layer_of], theta=theta[layer_of], k_thawed=k_thawed[layer_of],
        k_frozen=k_frozen[layer_of], width=width[layer_of], f_res=f_res[layer_of],
    )
    col = add_organic_layer(col, params)
    # moss and peat keep the summer ground cooler than the air
    n_thaw = params.n_thaw_mineral - params.n_thaw_organic * v_om[0]
    bucket = 1000.0 * (theta[0] * 0.07 + theta[1] * 0.21 + theta[2] * 0.72)  # mm in the top metre
    return Soil(column=col, porosity=porosity, theta=theta, n_thaw=n_thaw, bucket_mm=bucket)
