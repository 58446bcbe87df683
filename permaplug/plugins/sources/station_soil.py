"""``station-soil-temperature``: observed soil temperature at stations, as monthly layer means.

Reads a station record (formats in :mod:`permaplug.data.station`: ``edc``, ``gtnp``,
``long``, ``wide``), keeps a sensor's monthly mean only where at least ``min_coverage`` of the
month's expected readings exist, and maps the sensors to the four ERA5-Land layers by the
documented depth-weighted rule (a layer without a sensor in or next to it stays missing).

Output: dims ``(time, site)`` with ``stl1..stl4`` (degC, NaN = missing), plus the sensor means
``tsoil`` and their ``coverage`` with dims ``(time, site, depth)`` (depth in cm); coordinates
``site`` (index), ``name``, ``lat``, ``lon``, ``elevation`` and ``band`` (the site's
latitude band, -1 outside the six bands). ``attrs['layer_rule']`` spells out the weights.

Options: ``path`` (file); ``format``; ``depths`` (edc/wide: sensor column -> depth in cm, the
catalog declares them; long/gtnp: an optional list of depths in cm to keep);
``site``/``lat``/``lon``/``elevation`` (one-site files; gtnp takes them from
``metadata_file``); ``sites`` (long with ``site_column``: name -> {lat, lon, elevation});
``min_coverage`` (0.8); ``readings_per_day`` (default: inferred); ``sensor_set``
(``available``: the rule over the sensors present each month; ``complete``: fixed weights,
a layer missing whenever a sensor it weighs is); ``time_column``,
``depth_column``, ``value_column``, ``site_column``, ``depth_units`` (long), ``na_values``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError
from permaplug.core.source import Source
from permaplug.core.variables import Variable
from permaplug.data import station
from permaplug.plugins.sources.variables import ERA5LAND

FORMATS = ("edc", "gtnp", "long", "wide")


def _position(opts: dict, name: str) -> dict[str, float]:
    try:
        lat, lon = float(opts["lat"]), float(opts["lon"])
    except KeyError as exc:
        raise DataError(f"station-soil-temperature: option {exc.args[0]!r} (the site's "
                        "position, degrees) is required for this format") from None
    except (TypeError, ValueError):
        raise DataError("station-soil-temperature: options lat/lon must be numbers") from None
    return {"lat": lat, "lon": ((lon + 180.0) % 360.0) - 180.0,
            "elevation": float(opts.get("elevation", float("nan")))}


class StationSoilTemperatureSource(Source):
    """Station soil temperature (EDC, GTN-P, plain long/wide tables) as monthly layer means."""

    name: ClassVar[str] = "station-soil-temperature"
    role: ClassVar[str] = "observations"
    description: ClassVar[str] = ("Observed soil temperature at stations (EDC, GTN-P, plain "
                                  "tables) as monthly ERA5-Land layer means")
    variables: ClassVar[tuple[Variable, ...]] = tuple(ERA5LAND[t] for t in schema.TARGETS)

    def readings(self) -> tuple[Any, dict[str, dict[str, float]], dict]:
        """The raw readings, each site's position and the unused options."""
        opts = dict(self.options)
        path = opts.pop("path", None)
        if path is None:
            raise DataError("station-soil-temperature: option 'path' (the station file) is "
                            "required")
        path = Path(path)
        fmt = opts.pop("format", "edc")
        if fmt not in FORMATS:
            raise DataError(f"station-soil-temperature: format {fmt!r}; use one of "
                            f"{', '.join(FORMATS)}")
        site = str(opts.pop("site", path.name.split(".")[0]))
        pos_opts = {k: opts.pop(k) for k in ("lat", "lon", "elevation") if k in opts}
        na = list(opts.pop("na_values", []))
        positions: dict[str, dict[str, float]] = {}
        if fmt == "edc":
            r = station.read_edc(path, opts.pop("depths", None), site)
            positions[site] = _position(pos_opts, site)
        elif fmt == "wide":
            r = station.read_wide(path, opts.pop("depths", None), site,
                                  opts.pop("time_column", "time"), na)
            positions[site] = _position(pos_opts, site)
        elif fmt == "long":
            site_col = opts.pop("site_column", None)
            r = station.read_long(path, site, opts.pop("time_column", "time"),
                                  opts.pop("depth_column", "depth"),
                                  opts.pop("value_column", "temperature"),
                                  opts.pop("depth_units", "cm"), na, site_col)
            sites = opts.pop("sites", None)
            if site_col:
                if not isinstance(sites, dict):
                    raise DataError("station-soil-temperature: with site_column, option "
                                    "'sites' must give each site's {lat, lon}")
                positions = {str(k): _position(dict(v or {}), str(k)) for k, v in sites.items()}
            else:
                positions[site] = _position(pos_opts, site)
        else:
            meta = opts.pop("metadata_file", None)
            r, positions = station.read_gtnp(path, Path(meta) if meta else None,
                                             na or [-999.0])
            if not positions:
                positions = {s: _position(pos_opts, s) for s in r["site"].unique()}
        keep = opts.pop("depths", None) if fmt in ("long", "gtnp") else None
        if keep is not None:
            want = np.asarray([float(d) for d in keep])
            r = r[np.isin(r["depth_cm"].to_numpy(), want)]
            if r.empty:
                raise DataError(f"{path}: none of the depths {list(keep)} cm is in the file")
        unknown = sorted(set(r["site"].unique()) - set(positions))
        if unknown:
            raise DataError(f"{path}: site {unknown[0]!r} has no position (lat, lon)")
        return r, positions, opts

    def open(self) -> xr.Dataset:
        readings, positions, opts = self.readings()
        min_cov = float(opts.pop("min_coverage", station.MIN_COVERAGE))
        rpd = opts.pop("readings_per_day", None)
        sensor_set = str(opts.pop("sensor_set", "available"))
        label = opts.pop("data_label", None)
        if opts:
            raise DataError(f"station-soil-temperature: unknown option(s) {sorted(opts)}")
        monthly = station.monthly_means(readings, min_cov, rpd)
        layers = station.to_layers(monthly["tsoil"], sensor_set=sensor_set)
        names = [str(s) for s in monthly["site"].values]
        lat = np.array([positions[n]["lat"] for n in names])
        ds = xr.Dataset(
            {t: layers.sel(layer=t, drop=True).transpose("time", "site").assign_attrs(
                ERA5LAND[t].cf_attrs()) for t in schema.TARGETS},
        )
        ds["tsoil"] = monthly["tsoil"].transpose("time", "site", "depth")
        ds["coverage"] = monthly["coverage"].transpose("time", "site", "depth")
        ds = ds.assign_coords(
            site=np.arange(len(names)), name=("site", np.array(names, dtype=object)),
            lat=("site", lat), lon=("site", np.array([positions[n]["lon"] for n in names])),
            elevation=("site", np.array([positions[n]["elevation"] for n in names])),
            band=("site", schema.band_of_latitude(lat).astype(np.int64)),
        )
        ds["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude"}
        ds["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude"}
        depths = [float(d) for d in monthly["depth"].values]
        ds.attrs[schema.DATA_LABEL_ATTR] = label or "station soil temperature (real)"
        ds.attrs["provenance"] = (f"station soil temperature {self.options.get('path')} "
                                  f"(format {self.options.get('format', 'edc')}); monthly means "
                                  f"where >= {min_cov:g} of the expected readings exist")
        ds.attrs["min_coverage"] = min_cov
        ds.attrs["sensor_depths_cm"] = ", ".join(f"{d:g}" for d in depths)
        ds.attrs["layer_rule"] = station.rule_description(depths)
        ds.attrs["sensor_set"] = sensor_set
        return ds
