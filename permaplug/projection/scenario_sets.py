"""What a band projection reads before its networks predict: the bias-corrected scenarios and the
scenario truth (:func:`scenario_sets`), and a key naming those inputs (:func:`scenario_sets_key`).

Neither needs the trained networks, only the run's stored table, the catalog, the corrector and
the variables the networks use, so ``permaplug run`` computes them in a second process while the
networks train (:mod:`permaplug.commands.background`) and hands them to
:func:`permaplug.projection.pipeline.project_run`, which takes them only when its own key is
equal (same catalog file, same table values and attributes, same correction arguments) and
otherwise computes them itself with the same function.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from permaplug.projection.truth_forcing import open_truth


def table_digest(table: xr.Dataset) -> str:
    """SHA-256 of every variable's name, dims, dtype, values and attributes, and the table's
    attributes (hex)."""
    h = hashlib.sha256(repr(sorted((str(k), repr(v)) for k, v in table.attrs.items())).encode())
    for name in sorted(map(str, table.variables)):
        var = table[name].variable
        h.update(repr((name, var.dims, str(var.dtype),
                       sorted((str(k), repr(v)) for k, v in var.attrs.items()))).encode())
        values = np.asarray(var.values)
        h.update(repr(values.tolist()).encode() if values.dtype == object
                 else np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def scenario_sets_key(catalog: str | Path, table: xr.Dataset, corrector: str,
                      calibration: tuple[int, int], scenarios: Sequence[str] | None,
                      options: dict | None, continuation: str | None,
                      variables: Sequence[str]) -> tuple:
    """A hashable key of :func:`scenario_sets`'s arguments (``catalog``: the catalog file)."""
    return (str(catalog), table_digest(table), str(corrector),
            tuple(int(y) for y in calibration),
            None if scenarios is None else tuple(map(str, scenarios)),
            tuple(sorted((str(k), repr(v)) for k, v in (options or {}).items())),
            continuation, tuple(map(str, variables)))


def scenario_sets(catalog: Any, table: xr.Dataset, corrector: str, calibration: tuple[int, int],
                  scenarios: Sequence[str] | None, options: dict | None,
                  continuation: str | None, variables: Sequence[str]
                  ) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """``(corrected, truth)`` for a band table ``(time, band)``.

    ``corrected``: :func:`permaplug.correction.pipeline.corrected_scenarios` of ``catalog`` (a
    catalog object or file) against ``table`` over the ``calibration`` years, ``(scenario,
    time, band)``; ``truth``: :func:`permaplug.projection.truth_forcing.open_truth` of its
    scenario names, ``{scenario: (time, band) dataset}``.
    """
    from permaplug.correction.pipeline import corrected_scenarios

    if isinstance(catalog, (str, Path)):
        from permaplug.core.catalog import load_catalog

        catalog = load_catalog(catalog)
    corrected, _fitted = corrected_scenarios(
        catalog, corrector=corrector, obs=table, calibration=calibration,
        scenarios=None if scenarios is None else list(scenarios), options=dict(options or {}),
        continuation=continuation, variables=list(variables))
    names = [str(x) for x in corrected["scenario"].values]
    return corrected, open_truth(catalog, names, "bands")
