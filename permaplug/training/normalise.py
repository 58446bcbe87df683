"""Z-score normalisation with training statistics only, stored with every checkpoint as JSON.

Dynamic features and targets: mean and standard deviation over the training years' months of
every unit (NaN skipped; a target layer with no observation at all gets mean 0, std 1).
Static features: over the units. A constant feature gets std 1 (it normalises to 0). The same statistics normalise scenario tables later (``Run.predict``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from permaplug.core import schema
from permaplug.core.atomic import write_text_atomic
from permaplug.core.errors import DataError
from permaplug.training.windows import SeriesArrays


def _stats(values: np.ndarray, axis: tuple[int, ...], what: str,
           allow_empty: bool = False) -> tuple[list[float], list[float]]:
    """Mean and std over ``axis``; with ``allow_empty`` an all-NaN feature gets (0, 1)."""
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice
            mean = np.nanmean(values, axis=axis)
            std = np.nanstd(values, axis=axis)
    if allow_empty:
        empty = ~np.isfinite(mean)
        mean, std = np.where(empty, 0.0, mean), np.where(empty, 1.0, std)
    if not np.isfinite(mean).all():
        raise DataError(f"normalisation: a {what} has no finite value in the training years")
    std = np.where(std > 1e-12, std, 1.0)
    return [float(v) for v in mean], [float(v) for v in std]


@dataclass
class Normaliser:
    """Per-feature means and standard deviations (physical units) of the training years."""

    dynamic_names: list[str]
    dynamic_mean: list[float]
    dynamic_std: list[float]
    static_names: list[str]
    static_mean: list[float]
    static_std: list[float]
    target_names: list[str]
    target_mean: list[float]
    target_std: list[float]
    train_years: list[int]
    window: int = schema.WINDOW
    z_stats: dict[str, Any] | None = None
    data_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, arrays: SeriesArrays, train_years: tuple[int, int], window: int = schema.WINDOW,
            z_stats: dict[str, Any] | None = None) -> Normaliser:
        """Statistics from the months of ``train_years`` only (never the test years)."""
        years = arrays.years
        sel = (years >= train_years[0]) & (years <= train_years[1])
        if not sel.any():
            raise DataError(f"no months of the training years {train_years[0]}-{train_years[1]} "
                            "in the table")
        dm, ds = _stats(arrays.dynamic[:, sel], (0, 1), "dynamic feature")
        # a layer never observed (e.g. no sensor below 100 cm at a station) is never a loss
        # term nor scored: (0, 1) keeps its predictions finite
        tm, ts = _stats(arrays.target[:, sel], (0, 1), "soil temperature layer",
                        allow_empty=not np.isfinite(arrays.target[:, sel]).all(axis=(0, 1)).all())
        if arrays.static.shape[1]:
            sm, ss = _stats(arrays.static, (0,), "static feature")
        else:
            sm, ss = [], []
        return cls(list(arrays.dynamic_names), dm, ds, list(arrays.static_names), sm, ss,
                   list(schema.TARGETS), tm, ts, [int(train_years[0]), int(train_years[1])],
                   window, z_stats, arrays.data_label)

    def check(self, arrays: SeriesArrays) -> None:
        if list(arrays.dynamic_names) != self.dynamic_names or \
                list(arrays.static_names) != self.static_names:
            raise DataError("the table's features do not match the normaliser's")

    def dynamic(self, values: np.ndarray) -> np.ndarray:
        """``[..., F]`` physical -> normalised."""
        return ((values - np.asarray(self.dynamic_mean, np.float32))
                / np.asarray(self.dynamic_std, np.float32)).astype(np.float32)

    def static(self, values: np.ndarray) -> np.ndarray:
        if not self.static_names:
            return np.zeros(values.shape[:-1] + (0,), np.float32)
        return ((values - np.asarray(self.static_mean, np.float32))
                / np.asarray(self.static_std, np.float32)).astype(np.float32)

    def target(self, values: np.ndarray) -> np.ndarray:
        """``[..., L]`` degC -> normalised."""
        return ((values - np.asarray(self.target_mean, np.float32))
                / np.asarray(self.target_std, np.float32)).astype(np.float32)

    def target_inverse(self, values: np.ndarray) -> np.ndarray:
        """``[..., L]`` normalised -> degC."""
        return (values * np.asarray(self.target_std, np.float32)
                + np.asarray(self.target_mean, np.float32)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path | str) -> Path:
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path | str) -> Normaliser:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{path}: not a permaplug normaliser ({exc})") from None
