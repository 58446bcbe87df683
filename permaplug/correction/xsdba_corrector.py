"""The shared machinery of the xsdba-based correctors (``qm``, ``qdm``, ``dqm``).

One xsdba adjustment object is trained per variable, with the variable's rule
(:mod:`permaplug.correction.rules`): additive or multiplicative, frequency adaptation, bounds.
Inputs may be band tables ``(time, band)``, scenario tables ``(scenario, time, band)`` or grids
``(time, cell)`` / ``(time, lat, lon)``; dask arrays must be chunked along space only (a time
chunking is merged into one chunk here, since xsdba silently corrupts results otherwise).

The fitted state is one :class:`xarray.Dataset` (variables ``<var>__af``, ``<var>__hist_q``...,
the options and per-variable parameters as JSON attributes) that round-trips through NetCDF;
xsdba's own ``jsonpickle`` attribute is never written nor read.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from tqdm import tqdm

from permaplug.core import progress as bars
from permaplug.core.corrector import Corrector
from permaplug.core.errors import ConfigError, DataError
from permaplug.core.schema import DATA_LABEL_ATTR
from permaplug.correction.rules import MULTIPLICATIVE, Rule, apply_bounds, rule_for
from permaplug.correction.xsdba_cache import cache_quantile_kernel

if TYPE_CHECKING:
    from xsdba.adjustment import TrainAdjust

SEP = "__"
STATE_ATTR = "permaplug_corrector"


def xsdba_class(name: str) -> type[TrainAdjust]:
    """xsdba's adjustment class ``name``, imported on first use: a corrector is built, its
    options checked and listed without importing xsdba (about 2 s), which ``permaplug run``
    needs only where it corrects. xsdba's quantile kernel is made a cached numba function
    first (it is otherwise compiled in every process)."""
    import xsdba

    cache_quantile_kernel()
    return getattr(xsdba, name)


class XsdbaAdjustment:
    """The class attribute ``adjustment`` of a corrector: the xsdba class ``name`` (e.g.
    ``"EmpiricalQuantileMapping"``), imported when first read (:func:`xsdba_class`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> type[TrainAdjust]:
        return xsdba_class(self.name)


def uses_dask(obj: xr.DataArray | xr.Dataset) -> bool:
    """xsdba's ``uses_dask`` (imported on use)."""
    from xsdba.base import uses_dask as xsdba_uses_dask

    return xsdba_uses_dask(obj)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed numpy's global RNG (used by xsdba's jitter and frequency adaptation), then restore."""
    if seed is None:
        yield
        return
    saved = np.random.get_state()
    np.random.seed(int(seed))
    try:
        yield
    finally:
        np.random.set_state(saved)


def draws_random(rule: Rule) -> bool:
    """Whether xsdba draws random numbers for a variable of this rule: the jitter of near-zero
    values and the frequency adaptation of dry months (precipitation, snowfall), in training
    and again on the series being adjusted. On dask arrays these draws happen while dask
    computes, from numpy's global generator in whatever order its threads take the tasks (and
    dask's own generator), so a seed did not make them repeat: snowfall on the demo grid
    differed by up to 10 mm between two runs. Such variables are therefore computed eagerly
    (one block of cells at a time in gridded correction, a few tens of MB), under
    :func:`seeded`, as on band tables."""
    return bool(rule.adapt_freq_thresh or rule.jitter_under)


def one_time_chunk(da: xr.DataArray) -> xr.DataArray:
    """Merge dask chunks along ``time`` (xsdba needs the whole series in one chunk)."""
    if uses_dask(da) and len(da.chunks[da.get_axis_num("time")]) > 1:
        return da.chunk({"time": -1})
    return da


def _stable_rank(x: np.ndarray) -> np.ndarray:
    """Rank of each value along the last axis, ties broken by position (NaN ranked last)."""
    return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable").astype(float)


def reorder_like(sim: xr.DataArray, scen: xr.DataArray, group: str) -> xr.DataArray:
    """Restore the model's order inside each group (calendar month, or the whole series).

    xsdba's empirical quantile mapping adds step-wise adjustment factors, so a warmer model month
    can come out colder than a cooler one of the same calendar month. This keeps the corrected
    values of each group and unit (their distribution is unchanged) and hands them out in the
    order of the model values: the largest corrected value goes to the warmest model month
    (``xsdba.processing.reordering``). Equal model values receive the corrected values in time
    order (xsdba's own sort is not stable, so it is given the model's ranks with ties broken by
    time). A group whose missing values differ between ``sim`` and ``scen`` is left unchanged.
    ``sim`` and ``scen`` share dims (``time`` plus any others, e.g. ``scenario``, ``band``).
    """
    from xsdba.processing import reordering

    sim, scen = one_time_chunk(sim), one_time_chunk(scen)
    key = xr.apply_ufunc(
        _stable_rank, sim, input_core_dims=[["time"]], output_core_dims=[["time"]],
        dask="parallelized", output_dtypes=[float],
    ).where(sim.notnull())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*grouping other than 'dayofyear'.*")
        ranked = reordering(key.transpose(*scen.dims), scen, group=group).transpose(*scen.dims)
    gaps_agree = sim.isnull() == scen.isnull()
    if group == "time.month":
        month = scen["time"].dt.month
        same = gaps_agree.groupby(month).all("time").sel(month=month).drop_vars("month")
    else:
        same = gaps_agree.all("time")
    out = ranked.where(same, scen).transpose(*scen.dims)
    out.attrs = scen.attrs
    return out


def _clean_attrs(attrs: dict) -> dict:
    """Attributes NetCDF can store (drop xsdba's private and boolean ones)."""
    return {k: v for k, v in attrs.items()
            if not k.startswith("_") and not isinstance(v, bool) and k != "adj_params"}


def _check_time(ds: xr.Dataset, what: str) -> None:
    if "time" not in ds.dims:
        raise DataError(f"{what} has no 'time' dimension (dims: {', '.join(map(str, ds.dims))})")


def _history(attrs: dict, line: str) -> str:
    old = attrs.get("history", "")
    return f"{old}\n{line}" if old else line


class XsdbaCorrector(Corrector):
    """A Corrector training one ``xsdba`` adjustment per variable (see module docstring).

    Options: ``nquantiles`` (50), ``group`` ("time.month": one mapping per calendar month),
    ``interp`` ("nearest"), ``extrapolation`` ("constant"), ``seed`` (0: seeds the random jitter
    and frequency adaptation of precipitation so results are reproducible), ``variables``
    (default: every variable present in both inputs), ``preserve_order`` (False: xsdba's output
    as is; True: re-rank the corrected values of each group so their order follows the model's,
    see :func:`reorder_like`), ``fast`` (False; True: use
    :mod:`permaplug.correction.fastqm` where it applies, see :meth:`uses_fast_path`; gridded
    correction turns it on).
    """

    adjustment: ClassVar[XsdbaAdjustment]
    """The xsdba class, e.g. ``XsdbaAdjustment("EmpiricalQuantileMapping")``."""
    defaults: ClassVar[dict[str, Any]] = {
        "nquantiles": 50, "group": "time.month", "interp": "nearest",
        "extrapolation": "constant", "seed": 0, "variables": None, "preserve_order": False,
        "fast": False,
    }
    fast_kind: ClassVar[str | None] = None
    """Which :mod:`permaplug.correction.fastqm` method computes this corrector (None: xsdba)."""

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"corrector {self.name!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.defaults))}"
            )
        super().__init__(**{**self.defaults, **options})
        if not isinstance(self.options["preserve_order"], bool):
            raise ConfigError(f"corrector {self.name!r}: preserve_order must be true or false, "
                              f"not {self.options['preserve_order']!r}")
        if not isinstance(self.options["fast"], bool):
            raise ConfigError(f"corrector {self.name!r}: fast must be true or false, "
                              f"not {self.options['fast']!r}")
        if self.options["preserve_order"] and self.options["group"] not in ("time", "time.month"):
            raise ConfigError(f"corrector {self.name!r}: preserve_order needs group 'time' or "
                              f"'time.month', not {self.options['group']!r}")
        self.fitted: dict[str, TrainAdjust] = {}
        self.rules: dict[str, Rule] = {}
        self.info: dict[str, Any] = {}

    # --- training -------------------------------------------------------------------------
    def _train_kwargs(self, rule: Rule) -> dict[str, Any]:
        return {
            "nquantiles": int(self.options["nquantiles"]), "group": self.options["group"],
            "kind": rule.kind, "adapt_freq_thresh": rule.adapt_freq_thresh,
            "jitter_under_thresh_value": rule.jitter_under,
        }

    def fit(self, model_hist: xr.Dataset, obs_hist: xr.Dataset) -> XsdbaCorrector:
        """Train on the common months of ``model_hist`` and ``obs_hist`` (dims ``(time, unit)``)."""
        _check_time(model_hist, "model_hist")
        _check_time(obs_hist, "obs_hist")
        if "scenario" in model_hist.dims:
            raise DataError("model_hist has a 'scenario' dimension: select the calibration "
                            "series (historical continued by one scenario) first")
        variables = self.options["variables"] or [
            v for v in model_hist.data_vars if v in obs_hist.data_vars
            and "time" in model_hist[v].dims and "time" in obs_hist[v].dims
        ]
        missing = [v for v in variables if v not in model_hist or v not in obs_hist]
        if missing:
            raise DataError(f"variable(s) {', '.join(missing)} missing from "
                            f"{'model_hist' if missing[0] not in model_hist else 'obs_hist'}")
        if not variables:
            raise DataError("model_hist and obs_hist share no time-dependent variable to correct")
        common = np.intersect1d(model_hist.time.values, obs_hist.time.values)
        if common.size < 24:
            raise DataError(f"model_hist and obs_hist share only {common.size} time steps "
                            "(need at least 24 to calibrate)")
        self.fitted, self.rules = {}, {}
        for var in tqdm(variables, desc=f"fitting {self.name}", unit="var", disable=bars.disabled(),
                        leave=False):
            ref = obs_hist[var].sel(time=common)
            hist = model_hist[var].sel(time=common)
            self._check_pair(var, ref, hist)
            rule = rule_for(var)
            ref = one_time_chunk(ref.astype("float64"))
            hist = one_time_chunk(hist.astype("float64"))
            if self.uses_fast_path(rule):
                adj = self._fast_train(ref, hist, rule)
            else:
                if draws_random(rule):  # see draws_random: computed here, seeded
                    ref, hist = ref.compute(), hist.compute()
                with seeded(self.options["seed"]), warnings.catch_warnings():
                    warnings.filterwarnings("ignore",
                                            message=".*grouping other than 'dayofyear'.*")
                    adj = self.adjustment.train(ref, hist, **self._train_kwargs(rule))
            if not uses_dask(adj.ds):
                adj.ds.load()
            self.fitted[var], self.rules[var] = adj, rule
        times = np.asarray(common)
        self.info = {
            "calibration_start": str(times[0])[:7], "calibration_end": str(times[-1])[:7],
            "n_time": int(times.size),
            "obs_data": obs_hist.attrs.get(DATA_LABEL_ATTR, "unknown data"),
            "model_data": model_hist.attrs.get(DATA_LABEL_ATTR, "unknown data"),
        }
        return self

    @staticmethod
    def _check_pair(var: str, ref: xr.DataArray, hist: xr.DataArray) -> None:
        for da, what in ((ref, "obs_hist"), (hist, "model_hist")):
            if "units" not in da.attrs:
                raise DataError(f"{what}: variable {var!r} has no 'units' attribute")
        if ref.attrs["units"] != hist.attrs["units"]:
            raise DataError(f"variable {var!r}: units differ between obs_hist "
                            f"({ref.attrs['units']}) and model_hist ({hist.attrs['units']})")
        if set(ref.dims) != set(hist.dims):
            raise DataError(f"variable {var!r}: dims differ between obs_hist {ref.dims} and "
                            f"model_hist {hist.dims}")
        for dim in ref.dims:
            if dim != "time" and dim in ref.coords and dim in hist.coords and \
                    not np.array_equal(ref[dim].values, hist[dim].values):
                raise DataError(f"variable {var!r}: the '{dim}' coordinates of obs_hist and "
                                f"model_hist differ (select the same units first)")

    # --- the fast path ---------------------------------------------------------------------
    def uses_fast_path(self, rule: Rule) -> bool:
        """Whether ``fastqm`` computes this variable: option ``fast``, a corrector with a fast
        method (``qm``, ``qdm``, ``dqm``), ``group="time.month"``, ``interp="nearest"``,
        ``extrapolation="constant"``, no frequency adaptation nor jitter (not precipitation or
        snowfall). Everything else is xsdba's own code."""
        o = self.options
        return bool(o["fast"] and self.fast_kind in ("eqm", "qdm", "dqm")
                    and o["group"] == "time.month"
                    and o["interp"] == "nearest" and o["extrapolation"] == "constant"
                    and rule.adapt_freq_thresh is None and rule.jitter_under is None)

    def _fast_train(self, ref: xr.DataArray, hist: xr.DataArray, rule: Rule) -> TrainAdjust:
        """xsdba's training, computed by :func:`fastqm.train_eqm` (``qm``, ``qdm``) or
        :func:`fastqm.train_dqm` (``dqm``; dask: per block of cells); returned as a trained
        xsdba adjustment object (state and fallback unchanged)."""
        from permaplug.correction import fastqm

        nq = int(self.options["nquantiles"])
        months = fastqm.months_of(ref["time"].values)
        dqm = self.fast_kind == "dqm"

        def kernel(r: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, ...]:
            lead = r.shape[:-1]
            r, h = r.reshape(-1, r.shape[-1]).T, h.reshape(-1, h.shape[-1]).T
            if dqm:
                af, hq, sc = fastqm.train_dqm(r, h, months, nq, rule.kind)  # [12, Q, N], [12, N]
            else:
                (af, hq), sc = fastqm.train_eqm(r, h, months, nq, rule.kind), np.zeros((12, 0))
            back = (lambda a: np.moveaxis(a, -1, 0).reshape(lead + a.shape[:-1]))
            return back(af), back(hq), (back(sc) if dqm else np.zeros(lead + (12,)))

        af, hist_q, scaling = xr.apply_ufunc(
            kernel, ref, hist, input_core_dims=[["time"], ["time"]],
            output_core_dims=[["month", "quantiles"], ["month", "quantiles"], ["month"]],
            dask="parallelized", output_dtypes=[float, float, float],
            dask_gufunc_kwargs={"output_sizes": {"month": 12, "quantiles": nq}},
        )
        coords = {"month": np.arange(1, 13), "quantiles": fastqm.nodes(nq)}
        ds = xr.Dataset({"af": af.assign_coords(coords), "hist_q": hist_q.assign_coords(coords)})
        if dqm:
            ds["scaling"] = scaling.assign_coords(month=coords["month"])
        from xsdba.base import Grouper

        group = Grouper(self.options["group"])
        ds.attrs = {"group": group.name, "group_compute_dims": [group.dim],
                    "group_window": group.window}
        adj = self.adjustment(
            _trained=True, hist_calendar=hist["time"].dt.calendar,
            train_units=ref.attrs["units"], group=group, kind=rule.kind,
            adapt_freq_thresh=None, max_tail_factor=None,
        )
        adj.set_dataset(ds)
        return adj

    def _fast_adjust(self, adj: TrainAdjust, sim: xr.DataArray, rule: Rule) -> xr.DataArray:
        """xsdba's ``adjust`` (nearest, constant), computed by :func:`fastqm.adjust_eqm_exact`
        (``qm``), :func:`fastqm.adjust_qdm_exact` (``qdm``: ranks within ``sim``'s months) or
        :func:`fastqm.adjust_dqm_exact` (``dqm``: ``detrend=1``)."""
        from permaplug.correction import fastqm

        time = sim["time"].values
        quantiles = adj.ds["quantiles"].values
        kind = self.fast_kind
        scaling = adj.ds["scaling"] if kind == "dqm" else adj.ds["af"].isel(quantiles=0)

        def kernel(x: np.ndarray, af: np.ndarray, hq: np.ndarray, sc: np.ndarray) -> np.ndarray:
            shape = x.shape
            lead = np.broadcast_shapes(shape[:-1], af.shape[:-2], hq.shape[:-2], sc.shape[:-1])
            x = np.broadcast_to(x, lead + shape[-1:]).reshape(-1, shape[-1])
            tables = [np.moveaxis(np.broadcast_to(a, lead + a.shape[-2:]).reshape(
                (-1,) + a.shape[-2:]), 0, -1) for a in (af, hq)]  # [12, Q, N]
            if kind == "qdm":
                out, _ = fastqm.adjust_qdm_exact(x.T[None], time, tables[0], quantiles, rule.kind)
            elif kind == "dqm":
                sc = np.broadcast_to(sc, lead + sc.shape[-1:]).reshape(-1, sc.shape[-1]).T
                out, _ = fastqm.adjust_dqm_exact(x.T[None], time, tables[0], tables[1], sc,
                                                 rule.kind)
            else:
                out, _ = fastqm.adjust_eqm_exact(x.T[None], time, tables[0], tables[1],
                                                 rule.kind)
            return out[0].T.reshape(lead + shape[-1:])

        scen = xr.apply_ufunc(
            kernel, sim, adj.ds["af"], adj.ds["hist_q"], scaling,
            input_core_dims=[["time"], ["month", "quantiles"], ["month", "quantiles"],
                             ["month"]],
            output_core_dims=[["time"]], dask="parallelized", output_dtypes=[float],
        )
        return scen.transpose(*sim.dims).assign_attrs(sim.attrs)

    # --- application ----------------------------------------------------------------------
    def _adjust(self, adj: TrainAdjust, sim: xr.DataArray,
                rule: Rule | None = None) -> xr.DataArray:
        """One adjust call over all of ``sim`` (overridden by QDM to work in moving periods):
        the fast path when ``rule`` is given and :meth:`uses_fast_path`, else xsdba's."""
        if rule is not None and self.uses_fast_path(rule):
            return self._fast_adjust(adj, sim, rule)
        return adj.adjust(sim, interp=self.options["interp"],
                          extrapolation=self.options["extrapolation"])

    @staticmethod
    def _fill_degenerate(adj: TrainAdjust, sim: xr.DataArray, scen: xr.DataArray,
                         rule: Rule) -> tuple[xr.DataArray, int]:
        """Correct values xsdba left NaN although the input was valid.

        xsdba's quantile delta mapping returns NaN for a calendar month whose values are all
        equal (ties everywhere, e.g. zero solar radiation in polar night). There the month's
        mean adjustment factor is applied instead (added, or multiplied for multiplicative
        variables). Units with no reference data (all-NaN factors) stay NaN.
        """
        if "af" not in adj.ds or "month" not in adj.ds["af"].dims:
            return scen, 0
        gap = scen.isnull() & sim.notnull()
        lazy = uses_dask(scen)
        if not lazy and not int(gap.sum()):
            return scen, 0
        af = adj.ds["af"].mean("quantiles") if "quantiles" in adj.ds["af"].dims else adj.ds["af"]
        af_t = af.sel(month=sim["time"].dt.month).drop_vars("month", errors="ignore")
        filled = sim * af_t if rule.kind == MULTIPLICATIVE else sim + af_t
        out = scen.where(~gap, filled.transpose(*scen.dims))
        out.attrs = scen.attrs
        return out, (0 if lazy else int((gap & out.notnull()).sum()))

    def apply(self, scenario: xr.Dataset) -> xr.Dataset:
        """Correct every fitted variable of ``scenario`` (any extra dims, e.g. ``scenario``)."""
        if not self.fitted:
            raise ConfigError(f"corrector {self.name!r} is not fitted: call fit() first")
        _check_time(scenario, "scenario")
        missing = [v for v in self.fitted if v not in scenario]
        if missing:
            raise DataError(f"scenario lacks fitted variable(s) {', '.join(missing)}")
        out = scenario.copy()
        for var, adj in tqdm(self.fitted.items(), desc=f"applying {self.name}", unit="var",
                             disable=bars.disabled(), leave=False):
            sim = scenario[var]
            units = sim.attrs.get("units")
            if units != adj.train_units:
                raise DataError(f"scenario variable {var!r} has units {units!r}; the corrector "
                                f"was fitted in {adj.train_units!r}")
            sim64 = one_time_chunk(sim.astype("float64"))
            if draws_random(self.rules[var]):
                sim64 = sim64.compute()  # see draws_random: computed here, seeded
            with seeded(self.options["seed"]), warnings.catch_warnings():
                # units with no reference data (all-NaN factors) stay NaN, knowingly
                warnings.filterwarnings("ignore", message="All-nan slice", category=RuntimeWarning)
                scen = self._adjust(adj, sim64, self.rules[var])
                if not uses_dask(scen):
                    scen = scen.load()
            scen, n_filled = self._fill_degenerate(adj, sim64, scen.transpose(*sim.dims),
                                                   self.rules[var])
            if self.options["preserve_order"]:
                scen = reorder_like(sim64.transpose(*scen.dims), scen, self.options["group"])
            scen = apply_bounds(scen, self.rules[var])
            scen = scen.astype(sim.dtype) if sim.dtype.kind == "f" else scen
            scen.attrs = {**sim.attrs, "history": _history(
                sim.attrs, f"bias-corrected with permaplug {self.name} "
                           f"(xsdba {self.adjustment.__name__}, {self.info.get('calibration_start')}"
                           f"..{self.info.get('calibration_end')} against "
                           f"{self.info.get('obs_data')})")}
            if n_filled:
                scen.attrs["bias_correction_fallback"] = (
                    f"{n_filled} values in calendar months whose values were constant (e.g. "
                    f"polar-night solar radiation) corrected by the month's mean adjustment "
                    f"factor: xsdba returns NaN there")
            out[var] = scen.drop_vars([c for c in scen.coords if c not in sim.coords])
        out.attrs = {**scenario.attrs, "bias_correction": self.name,
                     "bias_corrected_variables": ",".join(self.fitted),
                     "history": _history(scenario.attrs, f"bias-corrected with permaplug "
                                                          f"{self.name}")}
        return out

    # --- state ----------------------------------------------------------------------------
    def state(self) -> xr.Dataset:
        """Fitted factors and quantiles of every variable, plus JSON attributes (NetCDF-safe)."""
        if not self.fitted:
            raise ConfigError(f"corrector {self.name!r} is not fitted: nothing to save")
        parts, meta = [], {}
        for var, adj in self.fitted.items():
            ds = adj.ds.drop_attrs() if hasattr(adj.ds, "drop_attrs") else adj.ds.copy()
            ds = ds.rename({v: f"{var}{SEP}{v}" for v in ds.data_vars})
            for v in ds.variables:
                ds[v].attrs = _clean_attrs(ds[v].attrs)
            parts.append(ds)
            meta[var] = {
                "rule": self.rules[var].to_dict(), "train_units": adj.train_units,
                "hist_calendar": adj.hist_calendar, "group": adj.group.name,
                "group_window": int(adj.group.window),
            }
        state = xr.merge(parts, combine_attrs="drop", compat="equals", join="exact")
        options = {k: v for k, v in self.options.items()}
        state.attrs = {
            STATE_ATTR: self.name, "xsdba_class": self.adjustment.__name__,
            "options": json.dumps(options), "variables": json.dumps(meta),
            "info": json.dumps(self.info),
            DATA_LABEL_ATTR: self.info.get("model_data", "unknown data"),
        }
        return state

    @classmethod
    def from_state(cls, state: xr.Dataset) -> XsdbaCorrector:
        """Rebuild a fitted corrector from :meth:`state` (no jsonpickle involved)."""
        name = state.attrs.get(STATE_ATTR)
        if name != cls.name:
            raise ConfigError(f"corrector state is for {name!r}, not {cls.name!r}")
        try:
            options = json.loads(state.attrs["options"])
            meta = json.loads(state.attrs["variables"])
            info = json.loads(state.attrs.get("info", "{}"))
        except (KeyError, json.JSONDecodeError) as exc:
            raise ConfigError(f"corrector state for {name!r} has broken attributes: {exc}") from exc
        obj = cls(**options)
        obj.info = info
        for var, m in meta.items():
            names = [v for v in state.data_vars if v.startswith(f"{var}{SEP}")]
            ds = state[names].rename({n: n.split(SEP, 1)[1] for n in names})
            rule = Rule.from_dict(m["rule"])
            from xsdba.base import Grouper

            group = Grouper(m["group"], window=m.get("group_window", 1))
            ds.attrs = {"group": group.name, "group_compute_dims": [group.dim],
                        "group_window": group.window}
            adj = cls.adjustment(
                _trained=True, hist_calendar=m["hist_calendar"], train_units=m["train_units"],
                group=group, kind=rule.kind, adapt_freq_thresh=rule.adapt_freq_thresh,
                max_tail_factor=None,
            )
            adj.set_dataset(ds)
            obj.fitted[var], obj.rules[var] = adj, rule
        return obj
