"""``qm``: empirical quantile mapping per calendar month (the paper's correction; default)."""
from __future__ import annotations

from permaplug.correction.xsdba_corrector import XsdbaAdjustment, XsdbaCorrector


class QuantileMapping(XsdbaCorrector):
    """Empirical quantile mapping (xsdba ``EmpiricalQuantileMapping``, ``group="time.month"``).

    Maps each model value through the model's and the reanalysis' calibration-period quantiles
    of its calendar month. Removes the bias of every quantile, but also reshapes the model's
    change signal wherever future values leave the calibration range.
    """

    name = "qm"
    description = "empirical quantile mapping per calendar month (paper; xsdba EQM)"
    adjustment = XsdbaAdjustment("EmpiricalQuantileMapping")
    fast_kind = "eqm"
