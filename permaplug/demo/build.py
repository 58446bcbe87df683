"""Build the demo data set: simulate, write every file in its provider's format, write the catalog.

Layout of a demo folder::

    catalog.yaml                                    intake-2 catalog (the default catalog)
    README.md                                       what is real, what is emulated
    era5land/era5land_monthly_alaska_2001-2023.nc   ERA5-Land CDS monthly means layout
    cmip5/<var>_<table>_IPSL-CM5A-MR_<exp>_r1i1p1_<span>.nc, sftlf_fx_...nc
    static/geologic_map_alaska_demo.gpkg            USGS SIM 3340 layout (map-unit polygons)
    static/openlandmap/sol_*.tif                    OpenLandMap GeoTIFF layout
    truth/emulator_truth_<rcp>_2001-2100.nc         emulator truth per scenario: soil temperatures
                                                    and (v3 on) every ERA5-Land variable
"""
from __future__ import annotations

import functools
import shutil
import time as _time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from permaplug import __version__
from permaplug.core import schema
from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.core.errors import ConfigError
from permaplug.data.region import alaska_mask
from permaplug.demo import derive, forked, formats
from permaplug.demo.cache import (  # noqa: F401 - cache_root, demo_catalog_names re-exported
    DEMO_VERSION,
    cache_root,
    demo_catalog_names,
    demo_dir,
)
from permaplug.demo.emulator import ENGINES, STEPS_PER_MONTH
from permaplug.demo.forcing import (
    box_scenarios,
    model_cell_fields,
    read_era5_points,
)
from permaplug.demo.grid import demo_grid, ipsl_grid
from permaplug.demo.params import full_truth, params_for
from permaplug.demo.simulate import Simulation, default_workers, simulate
from permaplug.demo.soil import OLM_DEPTHS_CM, static_fields

READER = "permaplug.core.catalog:PermaplugReader"
LITHOLOGY_FILE = "static/geologic_map_alaska_demo.gpkg"
ERA5_FILE = "era5land/era5land_monthly_alaska_2001-2023.nc"


def truth_file(scenario: str) -> str:
    """Relative path of a scenario's emulator-truth file."""
    return f"truth/emulator_truth_{scenario}_2001-2100.nc"


def _history(seed: int, resolution: float, version: str = DEMO_VERSION) -> str:
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"{stamp} permaplug {__version__} demo build (demo data v{version}, "
            f"seed={seed}, resolution={resolution:g} deg)")


def _entry(plugin: str, options: dict, role: str, description: str, **meta) -> dict:
    return {
        "description": description,
        "reader": READER,
        "kwargs": {"plugin": plugin, "options": {**options, "data_label": schema.DEMO_LABEL}},
        "metadata": {"role": role, "data_label": schema.DEMO_LABEL, **meta},
    }


def catalog_dict(seed: int, resolution: float, ncell: int, version: str = DEMO_VERSION,
                 scenarios: list[str] | None = None) -> dict:
    """The demo catalog as a dict, in intake 2's complete form (``intake.from_yaml_file``
    opens the written file). ``scenarios``: default the real box tables'
    (:func:`permaplug.demo.forcing.box_scenarios`)."""
    from permaplug.core.catalog import complete_catalog

    scenarios = list(scenarios) if scenarios is not None else box_scenarios()
    entries = {
        "era5land": _entry(
            "era5land", {"paths": f"{{CATALOG_DIR}}/{ERA5_FILE}"}, "reanalysis",
            "ERA5-Land-format monthly fields 2001-2023: real ERA5 air temperature and "
            "precipitation spread over cells, emulated soil temperatures and other variables"),
        "ipsl-cm5a-mr": _entry(
            "cmip", {"paths": "{CATALOG_DIR}/cmip5", "scenarios": scenarios},
            "scenario", "CMIP5-format IPSL-CM5A-MR historical + RCP2.6/4.5/6.0/8.5: the real "
            "model's Alaska tas/pr (with its biases) spread over its grid; other variables "
            "derived"),
        "usgs-lithology": _entry(
            "usgs-lithology", {"path": f"{{CATALOG_DIR}}/{LITHOLOGY_FILE}"}, "static",
            "emulated lithology map in the USGS SIM 3340 layout"),
        "openlandmap": _entry(
            "openlandmap", {"path": "{CATALOG_DIR}/static/openlandmap"}, "static",
            "emulated bulk density and organic carbon in the OpenLandMap GeoTIFF layout"),
    }
    for s in scenarios:
        entries[f"truth-{s}"] = _entry(
            "era5land", {"paths": f"{{CATALOG_DIR}}/{truth_file(s)}"}, "scenario_truth",
            f"emulator truth: the emulator's soil temperatures under {s} forcing (observed "
            "climate + the model's change) 2024-2100, after the 2001-2023 reanalysis run; "
            "never used for training", scenario=s)
    return complete_catalog({
        "version": 2,
        "metadata": {
            "description": "permaplug demo data: a physics emulator on real ERA5 and "
                           "IPSL-CM5A-MR forcing, written in the real providers' formats",
            "data_label": schema.DEMO_LABEL, "demo_version": version, "seed": seed,
            "emulator_parameters": params_for(version).as_dict(),
            "resolution_deg": resolution, "land_cells": ncell,
            "permaplug_version": __version__,
        },
        "entries": entries,
    })


def observed_fields(sim: Simulation) -> dict[str, np.ndarray]:
    """The 2001-2023 ERA5-Land fields on cells (:func:`permaplug.demo.derive.era5land_fields`,
    private keys included): the reanalysis file, and the first 276 months of every full truth
    file (derived once, then continued)."""
    return derive.era5land_fields(sim.grid.cell_lat, sim.forcing, sim.output, sim.soil)


def _write_reanalysis(sim: Simulation, out: Path, history: str,
                      observed: dict[str, np.ndarray] | None = None) -> None:
    g = sim.grid
    fields = observed_fields(sim) if observed is None else observed
    formats.write_era5land(out / ERA5_FILE, sim.forcing.time, g.lat, g.lon,
                           {k: np.asarray(v) for k, v in fields.items() if k[0] != "_"}, g.mask,
                           history, to_grid=g.to_grid)


def truth_fields(sim: Simulation, scenario: str, full: bool = True,
                 observed: dict[str, np.ndarray] | None = None, pieces: bool = False
                 ) -> dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Fields of one scenario-truth file on cells, canonical units, each (nt, ncell), 2001-2100.

    ``full`` (demo v3 on): every ERA5-Land variable of the reanalysis file, from
    :func:`permaplug.demo.derive.era5land_fields` over the 2001-2023 run followed by the truth
    run (the derivation is causal, so 2001-2023 equals the reanalysis file), i.e. the very forcing
    the truth run used; else (v1, v2) only ``t2m``, ``tp`` and ``stl1..4``. ``observed``: the
    2001-2023 part (:func:`observed_fields`, computed here when not given); the truth run's part
    continues its soil-water bucket, so the result equals deriving 2001-2100 at once.
    ``pieces``: each field as its (2001-2023, 2024-2100) arrays, not joined (what
    :func:`permaplug.demo.formats.write_era5land` takes, without a copy of the whole series).
    """
    join = (lambda a, b: (np.asarray(a), np.asarray(b))) if pieces else \
        (lambda a, b: np.concatenate([np.asarray(a), np.asarray(b)]))
    forcing, output = sim.truth[scenario]
    if full:
        obs = observed_fields(sim) if observed is None else observed
        future = derive.era5land_fields(sim.grid.cell_lat, forcing, output, sim.soil,
                                        bucket=obs["_bucket"])
        return {k: join(obs[k], v) for k, v in future.items() if k[0] != "_"}
    fields = {"t2m": join(sim.forcing.t2m, forcing.t2m), "tp": join(sim.forcing.tp, forcing.tp)}
    for i in range(schema.N_LAYERS):
        fields[f"stl{i + 1}"] = join(sim.output.stl[:, i], output.stl[:, i])
    return fields


class TruthRows:
    """The fields of ``scenario``'s full truth file (:func:`truth_fields`, ``full``) a stretch of
    months at a time, as :func:`permaplug.demo.formats.write_era5land` asks for them (in time
    order): 2001-2023 from ``observed`` (:func:`observed_fields`), later months derived from
    the truth run's months asked for, each stretch continuing the previous one's soil-water
    bucket. The numbers of :func:`truth_fields` without an array of the whole series (a demo
    build's writers allocated 1-2 GB per 16,001-cell truth file that way)."""

    def __init__(self, sim: Simulation, scenario: str, observed: dict[str, np.ndarray]) -> None:
        self.forcing, self.output = sim.truth[scenario]
        self.lat, self.soil, self.observed = sim.grid.cell_lat, sim.soil, observed
        self.n_obs = len(observed["t2m"])
        self.bucket = observed["_bucket"]
        self.span: tuple[int, int] = (0, 0)  # truth-run months of ``block``
        self.block: dict[str, np.ndarray] = {}

    def fields(self) -> dict[str, functools.partial]:
        """Each variable as a function ``rows(t0, t1)`` of months since 2001-01."""
        return {k: functools.partial(self.rows, k) for k in self.observed if k[0] != "_"}

    def rows(self, name: str, t0: int, t1: int) -> np.ndarray:
        """Months ``t0 .. t1 - 1`` (since 2001-01) of ``name``, (t1 - t0, ncell)."""
        parts = []
        if t0 < self.n_obs:
            parts.append(np.asarray(self.observed[name])[t0:min(t1, self.n_obs)])
        if t1 > self.n_obs:
            span = (max(t0, self.n_obs) - self.n_obs, t1 - self.n_obs)
            if span != self.span:
                if span[0] != self.span[1]:
                    raise ValueError(f"truth rows {t0}..{t1 - 1} asked out of time order "
                                     f"(next: {self.span[1] + self.n_obs})")
                months = slice(*span)
                self.block = derive.era5land_fields(
                    self.lat, self.forcing.months(months), self.output.months(months),
                    self.soil, bucket=self.bucket)
                self.bucket, self.span = self.block["_bucket"], span
            parts.append(np.asarray(self.block[name]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _write_truth(sim: Simulation, out: Path, history: str, full: bool = True,
                 scenarios: list[str] | None = None,
                 observed: dict[str, np.ndarray] | None = None) -> None:
    """Write the truth file of each of ``scenarios`` (default: all of ``sim.truth``);
    ``observed``: see :func:`truth_fields`."""
    g = sim.grid
    if full and observed is None:
        observed = observed_fields(sim)
    for s in sim.truth if scenarios is None else scenarios:
        forcing, _output = sim.truth[s]
        time = sim.forcing.time.append(forcing.time)
        if full:
            fields = TruthRows(sim, s, observed).fields()
        else:
            fields = truth_fields(sim, s, full, pieces=True)
        formats.write_era5land(out / truth_file(s), time, g.lat, g.lon, fields, g.mask,
                               f"{history}; emulator truth under {s}", to_grid=g.to_grid)


def _start_truth_writers(sim: Simulation, out: Path, history: str, full: bool,
                         processes: int, observed: dict[str, np.ndarray] | None = None
                         ) -> forked.Forked | None:
    """Start writing the truth files in ``processes`` forked children (scenarios dealt out in
    turn) and return them to join; ``None`` (nothing started) when ``processes`` < 2 or the
    platform cannot fork: the caller then writes them with :func:`_write_truth`.
    ``observed``: see :func:`truth_fields`."""
    names = list(sim.truth)
    if processes < 2 or len(names) < 2 or not forked.can_fork():
        return None
    parts = [names[i::processes] for i in range(min(processes, len(names)))]
    return forked.Forked([functools.partial(_write_truth, sim, out, history, full, part,
                                            observed) for part in parts],
                         "writing the demo truth files")


def _dew_depression() -> np.ndarray:
    """Observed climatological t2m - d2m (K) per calendar month, mean of the real points."""
    pts = read_era5_points().sel(time=slice("1991-01-01", "2020-12-01"))
    dep = (pts["t2m"] - pts["d2m"]).groupby("time.month").mean(("time", "point"))
    return dep.values


def _write_cmip(sim: Simulation, out: Path, history: str) -> None:
    folder = out / "cmip5"
    folder.mkdir(parents=True, exist_ok=True)
    lat, lon = ipsl_grid()
    lat2, _ = np.meshgrid(lat, lon, indexing="ij")
    g = sim.grid
    in_box = (g.cell_lat >= 58) & (g.cell_lat <= 71) & (g.cell_lon + 360 >= 193) \
        & (g.cell_lon + 360 <= 219)
    box_lat = float(g.cell_lat[in_box].mean()) if in_box.any() else float(g.cell_lat.mean())
    dep = _dew_depression()
    hist = sim.box["historical"]
    names = [s for s in sim.box if s != "historical"]
    for s in names:
        full = pd.concat([hist, sim.box[s]]).sort_index()
        tas, pr = model_cell_fields(full, lat2.ravel(), sim.gradients, box_lat)
        fields = derive.model_fields(lat2.ravel(), full.index, tas, pr, dep)
        n_hist = len(hist)
        for var, values in fields.items():
            grid_values = values.reshape(len(full), lat.size, lon.size)
            formats.write_cmip(folder, var, s, full.index[n_hist:], lat, lon,
                               grid_values[n_hist:], history)
            if s == names[0]:
                formats.write_cmip(folder, var, "historical", full.index[:n_hist], lat, lon,
                                   grid_values[:n_hist], history)
    # land fraction: share of 8 x 8 sub-samples of each cell inside mainland Alaska
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    slat = lat[:, None, None, None] + sub[None, None, :, None] * (180 / 142)
    slon = lon[None, :, None, None] + sub[None, None, None, :] * 2.5
    frac = alaska_mask(slat, slon).mean(axis=(2, 3)) * 100.0
    formats.write_sftlf(folder, lat, lon, frac, history)


def _write_static(sim: Simulation, out: Path, seed: int) -> None:
    g = sim.grid
    lat2, lon2 = np.meshgrid(g.lat, g.lon, indexing="ij")
    full = static_fields(lat2.ravel(), lon2.ravel(), seed)  # same fields as the land cells'
    formats.write_lithology(out / LITHOLOGY_FILE, lat2.ravel(), lon2.ravel(), full.lith,
                            g.resolution)
    olm = out / "static" / "openlandmap"
    olm.mkdir(parents=True, exist_ok=True)
    land = alaska_mask(lat2, lon2)
    shape = (len(OLM_DEPTHS_CM), g.lat.size, g.lon.size)
    formats.write_openlandmap(olm, "bdod", OLM_DEPTHS_CM, full.bdod.reshape(shape), g.lat, g.lon,
                              land)
    formats.write_openlandmap(olm, "soc", OLM_DEPTHS_CM, full.soc.reshape(shape), g.lat, g.lon,
                              land)


README = """# permaplug demo data (emulated)

Built by `permaplug demo build` (permaplug {version}, demo data v{demo}, seed {seed},
resolution {res:g} deg, {ncell} land cells). Every dataset read from here is labelled
`data: demo emulator`.

Real: monthly 2 m air temperature, dew point and precipitation (ERA5, 14 Alaska points,
Climate Reanalyzer exports, 1940-2023) and the IPSL-CM5A-MR Alaska box means of tas and pr
(Goldenson et al. 2018; historical run1 + RCP run1), spread over cells with the latitudinal
gradient measured from the points. Contains modified Copernicus Climate Change Service
information (ERA5).

Emulated: soil temperatures (1-D heat conduction with freezing, snow, geothermal flux), all other
ERA5-Land variables, the other CMIP5 variables, lithology, bulk density, organic carbon, and the
scenario truth files. The files use the real providers' formats but are NOT provider data.
See docs/demo-data.md in permaplug for every formula.
"""


def build_demo(out_dir: Path, seed: int = 0, resolution: float = 0.5, n_cells: int | None = None,
               progress: bool = True, steps_per_month: int = STEPS_PER_MONTH,
               version: str = DEMO_VERSION, engine: str = "compiled") -> Path:
    """Build the demo data set into ``out_dir`` and return the path of its ``catalog.yaml``.

    Deterministic for a given ``seed``. ``n_cells`` (about that many land cells) overrides
    ``resolution`` (degrees). Everything is written into a temporary sibling folder that
    replaces ``out_dir`` at the end (an existing ``out_dir`` must be empty or a previous demo
    build, recognised by its ``catalog.yaml``). ``steps_per_month`` sets the emulator's time
    step (default 4, about a week; tests use 1 for speed -- the catalog records it).
    ``version`` picks the emulator parameters of that demo version (default: the current one).
    ``engine``: the emulator's solver (:data:`permaplug.demo.emulator.ENGINES`; ``numpy`` is the
    slow reference, same data within rounding).
    """
    params = params_for(version)
    if not 1 <= steps_per_month <= 30:
        raise ConfigError(f"steps_per_month={steps_per_month}: use 1 to 30")
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    out_dir = Path(out_dir)
    is_demo = (out_dir / "catalog.yaml").exists()
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not is_demo)):
        raise ConfigError(f"{out_dir}: exists and is not a permaplug demo folder; "
                          "choose an empty or new folder")
    grid = demo_grid(resolution, n_cells)
    t0, cpu0, child0 = _time.perf_counter(), _time.process_time(), _children_cpu()
    sim = simulate(grid, seed=seed, progress=progress, steps_per_month=steps_per_month,
                   params=params, engine=engine)
    history = _history(seed, grid.resolution, version)
    with atomic_path(out_dir, suffix="") as tmp:
        tmp.mkdir(parents=True)
        # the truth files (the bulk of the writing) in two forked children on real grids, while
        # this process writes the others
        observed = observed_fields(sim)  # derived once: reanalysis file and truth files
        writers = _start_truth_writers(sim, tmp, history, full_truth(version),
                                       default_workers(grid.ncell), observed)
        try:
            _write_reanalysis(sim, tmp, history, observed)
            if writers is None:
                _write_truth(sim, tmp, history, full_truth(version), observed=observed)
            _write_cmip(sim, tmp, history)
            _write_static(sim, tmp, seed)
        finally:
            if writers is not None:
                writers.join()
        cat = catalog_dict(seed, grid.resolution, grid.ncell, version, list(sim.truth))
        cat["metadata"]["steps_per_month"] = steps_per_month
        cat["metadata"]["build_seconds"] = round(_time.perf_counter() - t0, 1)
        cpu_main = _time.process_time() - cpu0
        cpu_workers = _children_cpu() - child0
        cat["metadata"]["build_cpu_seconds"] = {
            "main": round(cpu_main, 1), "workers": round(cpu_workers, 1),
            # what the wall clock would be on an idle machine (two workers run in parallel)
            "critical_path": round(cpu_main + cpu_workers / 2, 1)}
        write_text_atomic(tmp / "catalog.yaml", yaml.safe_dump(cat, sort_keys=False))
        write_text_atomic(tmp / "README.md", README.format(
            version=__version__, demo=version, seed=seed, res=grid.resolution,
            ncell=grid.ncell))
    return out_dir / "catalog.yaml"


def _children_cpu() -> float:
    """CPU seconds used so far by finished child processes (the truth-run workers)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ensure_demo_catalog(progress: bool = True, version: str = DEMO_VERSION) -> Path:
    """The demo catalog of ``version`` (default: the current one, the default catalog), built on
    first use (into a temporary folder, then renamed)."""
    target = demo_dir(version)
    catalog = target / "catalog.yaml"
    if catalog.exists():
        return catalog
    if target.exists():  # a folder without its catalog is a leftover: rebuild it
        shutil.rmtree(target)
    return build_demo(target, seed=0, progress=progress, version=version)
