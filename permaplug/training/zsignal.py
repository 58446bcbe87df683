"""The scenario signal z as a model input: fitted on the training years, stored as JSON.

z comes from :mod:`permaplug.correction.signal` (``fit_signal(strd, years, window)`` and
``scenario_signal(strd, stats)``); z at month ``t`` summarises the window ending at ``t``, so
the window ``t - W + 1 .. t`` carries ``z(t)`` as one more dynamic feature. The fitted
statistics go into ``normaliser.json`` so scenarios reuse the training years' reference.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import numpy as np
import xarray as xr

from permaplug.core.errors import DataError, NotAvailableError


def _signal_module():
    try:
        return importlib.import_module("permaplug.correction.signal")
    except ImportError as exc:
        raise NotAvailableError(
            f"the scenario signal z needs permaplug.correction.signal ({exc}); use --no-z"
        ) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def stats_to_json(stats: Any) -> dict[str, Any]:
    """The fitted signal statistics as JSON-ready data (dataset, dataclass or dict)."""
    if isinstance(stats, xr.Dataset):
        return {"kind": "dataset", "value": _jsonable(stats.to_dict(data="list"))}
    if dataclasses.is_dataclass(stats):
        cls = type(stats)
        return {"kind": "dataclass", "class": f"{cls.__module__}:{cls.__qualname__}",
                "value": _jsonable(dataclasses.asdict(stats))}
    if isinstance(stats, dict):
        return {"kind": "dict", "value": _jsonable(stats)}
    raise DataError(f"cannot store scenario-signal statistics of type {type(stats).__name__}")


def stats_from_json(data: dict[str, Any]) -> Any:
    kind, value = data.get("kind"), data.get("value")
    if kind == "dataset":
        return xr.Dataset.from_dict(value)
    if kind == "dataclass":
        module, _, qualname = data["class"].partition(":")
        if not module.startswith("permaplug."):
            raise DataError(f"refusing to rebuild signal statistics of class {data['class']}")
        cls = getattr(importlib.import_module(module), qualname)
        return cls(**value)
    if kind == "dict":
        return value
    raise DataError(f"unknown scenario-signal statistics kind {kind!r} in normaliser.json")


def fit_z(table: xr.Dataset, train_years: tuple[int, int], window: int) -> dict[str, Any]:
    """Fit z's reference statistics on ``table['strd']`` over ``train_years``."""
    if "strd" not in table:
        raise DataError("table has no variable 'strd' (needed for the scenario signal z)")
    stats = _signal_module().fit_signal(table["strd"], tuple(train_years), window)
    return stats_to_json(stats)


def z_series(table: xr.Dataset, z_stats: dict[str, Any]) -> xr.DataArray:
    """z of every month of ``table`` (dims as ``strd``), from stored statistics."""
    if "strd" not in table:
        raise DataError("table has no variable 'strd' (needed for the scenario signal z)")
    return _signal_module().scenario_signal(table["strd"], stats_from_json(z_stats))
