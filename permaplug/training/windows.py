"""Monthly arrays of an assembled table and the index of its 24-month windows.

A window is a pair ``(unit, last)``: the input months are ``last - W + 1 .. last`` and the
target is month ``last + 1`` (paper eq. 2.3-2.5). The scenario signal ``z`` (when an input) is one
value per window, z at the last input month, repeated at every step of the window. Windows are never copied out of the monthly
arrays: :class:`WindowSet` gathers a batch (one contiguous ``[B, W, F]`` copy) when asked.

The spatial dim is generic: ``band`` (six latitude bands), ``cell`` (gridded mode) or ``site``
(site mode); cells and sites have a ``band`` coordinate giving their embedding index.

Missing targets: a window is kept when at least one layer of its target month is observed;
the loss and every metric skip the missing layers (``permaplug.training.loop.masked_mse``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from permaplug.core import schema
from permaplug.core.errors import DataError

Z_FEATURE = "z"


def unit_dim(ds: xr.Dataset | xr.DataArray) -> str:
    """The spatial dim of a table: ``band``, ``cell`` or ``site`` (DataError otherwise)."""
    for dim in ("band", "cell", "site"):
        if dim in ds.dims:
            return dim
    raise DataError("table has no 'band', 'cell' or 'site' dimension (dims: "
                    f"{', '.join(map(str, ds.dims))})")


def calendar_features(time: np.ndarray) -> dict[str, np.ndarray]:
    """``year``, ``month_sin``, ``month_cos`` of monthly time stamps (each ``[T]``), computed by
    their feature plugins."""
    from permaplug.data.features import PAPER_CALENDAR, add_features

    ds, _ = add_features(xr.Dataset(coords={"time": pd.DatetimeIndex(time).values}),
                         PAPER_CALENDAR)
    return {k: np.asarray(ds[k].values, dtype=float) for k in PAPER_CALENDAR}


def _variable(table: xr.Dataset, name: str, udim: str, extra: xr.DataArray | None) -> np.ndarray:
    """One dynamic variable as ``[U, T]`` float32 (broadcast if it has no spatial dim).

    A derived feature absent from ``table`` is computed by its plugin (one that needs training
    statistics must be added first, :func:`permaplug.data.features.add_features`)."""
    if name in table:
        da = table[name]
    elif extra is not None and name == Z_FEATURE:
        da = extra
    else:
        from permaplug.data.features import add_features, feature_classes

        feature = feature_classes().get(name)
        if feature is None or feature.needs_fit():
            raise DataError(f"table has no variable {name!r} (needed as a model input)")
        da = add_features(table, [name])[0][name]
    bad = set(da.dims) - {"time", udim}
    if bad:
        raise DataError(f"variable {name!r} has unexpected dims {sorted(bad)}")
    da = da.broadcast_like(table[udim]) if udim not in da.dims else da
    return np.asarray(da.transpose(udim, "time").values, dtype=np.float32)


@dataclass
class SeriesArrays:
    """The monthly arrays of one table, in model order (physical units).

    ``dynamic`` ``[U, T, F]``; ``static`` ``[U, S]``; ``target`` ``[U, T, L]`` degC (NaN
    where the table has no soil temperature, e.g. scenario months); ``band`` ``[U]`` int64;
    ``month`` ``[T]`` 1..12; ``time`` ``[T]`` datetime64[ns]; ``units`` ``[U]`` unit labels.
    """

    time: np.ndarray
    month: np.ndarray
    unit_dim: str
    units: np.ndarray
    band: np.ndarray
    dynamic: np.ndarray
    static: np.ndarray
    target: np.ndarray
    dynamic_names: tuple[str, ...]
    static_names: tuple[str, ...]
    data_label: str

    @property
    def years(self) -> np.ndarray:
        return pd.DatetimeIndex(self.time).year.to_numpy()


def table_arrays(table: xr.Dataset, dynamic_names: tuple[str, ...],
                 static_names: tuple[str, ...], z: xr.DataArray | None = None,
                 require_targets: bool = True) -> SeriesArrays:
    """Read ``table`` (dims ``(time, band|cell)``) into :class:`SeriesArrays`.

    ``z`` (dims ``(time, unit)``) supplies the scenario signal when ``"z"`` is an input.
    Targets missing from the table are NaN unless ``require_targets``.
    """
    if "time" not in table.dims:
        raise DataError("table has no 'time' dimension")
    udim = unit_dim(table)
    time = np.asarray(table["time"].values).astype("datetime64[ns]")
    if len(time) > 1 and not (np.diff(time.astype("datetime64[M]").astype(int)) == 1).all():
        raise DataError("table 'time' is not a gap-free monthly series")
    if udim == "band" or "band" in table.coords:
        band = np.array(table["band"].values, dtype=np.int64)
    else:
        raise DataError(f"table has no 'band' coordinate on its {udim!r} dimension")
    dyn = np.stack([_variable(table, n, udim, z) for n in dynamic_names], axis=-1)
    stat = []
    for n in static_names:
        if n not in table:
            raise DataError(f"table has no static feature {n!r} (the model was trained with it)")
        da = table[n]
        if set(da.dims) - {udim}:
            raise DataError(f"static feature {n!r} must have dims ({udim},), not {da.dims}")
        stat.append(np.asarray(da.broadcast_like(table[udim]).values, dtype=np.float32))
    static = np.stack(stat, axis=-1) if stat else np.zeros((len(band), 0), np.float32)
    targets = []
    for n in schema.TARGETS:
        if n in table:
            targets.append(np.asarray(table[n].transpose(udim, "time").values, dtype=np.float32))
        elif require_targets:
            raise DataError(f"table has no target variable {n!r}")
        else:
            targets.append(np.full((len(band), len(time)), np.nan, np.float32))
    return SeriesArrays(
        time=time, month=np.array(pd.DatetimeIndex(time).month), unit_dim=udim,
        units=np.asarray(table[udim].values), band=band, dynamic=dyn, static=static,
        target=np.stack(targets, axis=-1), dynamic_names=tuple(dynamic_names),
        static_names=tuple(static_names), data_label=schema.data_label(table),
    )


def window_index(arrays: SeriesArrays, years: tuple[int, int], window: int = schema.WINDOW,
                 need_target: bool = True, counts: dict | None = None) -> np.ndarray:
    """Windows whose target month lies in ``years`` (inclusive): int64 ``[N, 2]`` (unit, last).

    A window needs ``window`` input months inside the series and finite inputs; with
    ``need_target`` also at least one observed (finite) target layer. Ordered by target month,
    then unit. ``counts`` (a dict) receives ``candidates``, ``dropped_missing_inputs``,
    ``dropped_missing_targets`` (no layer observed; only with ``need_target``) and ``kept``.
    """
    n_units, n_time = arrays.dynamic.shape[:2]
    last = np.arange(window - 1, n_time - 1)
    tyear = arrays.years[last + 1]
    last = last[(tyear >= years[0]) & (tyear <= years[1])]
    if last.size == 0:
        if counts is not None:
            counts.update(candidates=0, dropped_missing_inputs=0, dropped_missing_targets=0,
                          kept=0)
        return np.zeros((0, 2), np.int64)
    uu, ll = np.meshgrid(np.arange(n_units), last, indexing="xy")
    idx = np.stack([uu.ravel(), ll.ravel()], axis=1).astype(np.int64)
    names = list(arrays.dynamic_names)
    per_step = [i for i, n in enumerate(names) if n != Z_FEATURE]
    finite_in = np.isfinite(arrays.dynamic[:, :, per_step]).all(axis=-1)  # [U, T]
    # a window is valid when all its input months are finite: rolling count over the window
    csum = np.concatenate([np.zeros((n_units, 1)), np.cumsum(~finite_in, axis=1)], axis=1)
    bad_inputs = csum[idx[:, 0], idx[:, 1] + 1] - csum[idx[:, 0], idx[:, 1] + 1 - window]
    keep = bad_inputs == 0
    if Z_FEATURE in names:  # z is taken at the last input month only
        keep &= np.isfinite(arrays.dynamic[idx[:, 0], idx[:, 1], names.index(Z_FEATURE)])
    inputs_ok = keep.copy()
    if need_target:
        keep &= np.isfinite(arrays.target[idx[:, 0], idx[:, 1] + 1]).any(axis=-1)
    if counts is not None:
        counts.update(candidates=len(idx), dropped_missing_inputs=int((~inputs_ok).sum()),
                      dropped_missing_targets=int((inputs_ok & ~keep).sum()),
                      kept=int(keep.sum()))
    return idx[keep]


def target_windows(arrays: SeriesArrays, target_months, window: int = schema.WINDOW) -> np.ndarray:
    """Windows ``[N, 2]`` predicting each of ``target_months`` for every unit (DataError if any
    target month lacks ``window`` input months in the table)."""
    months = np.asarray(pd.DatetimeIndex(target_months).values).astype("datetime64[M]")
    series = arrays.time.astype("datetime64[M]")
    pos = np.searchsorted(series, months)
    missing = (pos >= len(series)) | (series[np.minimum(pos, len(series) - 1)] != months)
    # a target month may be one past the table's end (the inputs suffice)
    after_end = months == series[-1] + np.timedelta64(1, "M")
    pos = np.where(after_end, len(series), pos)
    if (missing & ~after_end).any() or (pos - window < 0).any():
        bad = months[(missing & ~after_end) | (pos - window < 0)][0]
        raise DataError(f"target month {bad} needs {window} input months inside the table "
                        f"({series[0]}..{series[-1]})")
    n_units = arrays.dynamic.shape[0]
    uu, ll = np.meshgrid(np.arange(n_units), pos - 1, indexing="xy")
    return np.stack([uu.ravel(), ll.ravel()], axis=1).astype(np.int64)


class WindowSet:
    """Normalised arrays as tensors plus a window index; batches are gathered on demand.

    ``z_col``: the column of the scenario signal z, set to z at each window's last month.

    ``batch(rows)`` -> ``x [B, W, F]``, ``band [B]``, ``static [B, S]``, ``y [B, L]`` (y is
    NaN where a layer is not observed).
    """

    def __init__(self, dynamic: np.ndarray, static: np.ndarray, band: np.ndarray,
                 target: np.ndarray, index: np.ndarray, window: int = schema.WINDOW,
                 z_col: int | None = None) -> None:
        self.dynamic = torch.as_tensor(np.ascontiguousarray(dynamic, np.float32))  # [U, T, F]
        # [U, T - W + 1, F, W]: a view, every window without a copy
        self._windows = self.dynamic.unfold(1, window, 1)
        # batches are gathered as rows of the [U * T, F] view: one contiguous [B, W, F] copy
        self._rows = self.dynamic.view(-1, self.dynamic.shape[-1])
        self._offsets = torch.arange(1 - window, 1)
        self.static = torch.as_tensor(np.ascontiguousarray(static, np.float32))
        self.band = torch.as_tensor(np.array(band, np.int64))
        self.target = torch.as_tensor(np.ascontiguousarray(target, np.float32))  # [U, T, L]
        self.index = torch.as_tensor(np.asarray(index, np.int64)).reshape(-1, 2)
        n_units, n_time = self.dynamic.shape[:2]
        if len(self.index) and not (
                bool((self.index[:, 0] >= 0).all()) and bool((self.index[:, 0] < n_units).all())
                and bool((self.index[:, 1] >= window - 1).all())
                and bool((self.index[:, 1] < n_time).all())):
            raise DataError(f"window index outside the arrays ({n_units} units, {n_time} months, "
                            f"{window}-month windows)")
        self.window = window
        self.z_col = z_col  # feature column holding z: filled with z at the last input month

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def batch(self, rows: torch.Tensor | slice) -> tuple[torch.Tensor, ...]:
        idx = self.index[rows]
        unit, last = idx[:, 0], idx[:, 1]
        n_time = self.dynamic.shape[1]
        flat = (unit * n_time + last)[:, None] + self._offsets  # [B, W] rows of each window
        x = self._rows.index_select(0, flat.reshape(-1)).view(len(idx), self.window, -1)
        if self.z_col is not None:
            x[:, :, self.z_col] = self.dynamic[unit, last, self.z_col].unsqueeze(1)
        y = self.target[unit, (last + 1).clamp(max=n_time - 1)]
        y = torch.where((last + 1 < n_time)[:, None], y, torch.nan)  # past the table's end
        return x, self.band[unit], self.static[unit], y
