"""``dqm``: detrended quantile mapping (keeps the model's linear trend)."""
from __future__ import annotations

from permaplug.correction.xsdba_corrector import XsdbaAdjustment, XsdbaCorrector


class DetrendedQM(XsdbaCorrector):
    """Detrended quantile mapping (xsdba ``DetrendedQuantileMapping``, Cannon et al. 2015).

    Each calendar month's series is detrended (linear fit over the whole corrected series), its
    anomalies quantile-mapped, and the model's trend put back: the mean change is kept.
    """

    name = "dqm"
    description = "detrended quantile mapping, keeps the model's trend (xsdba DQM)"
    adjustment = XsdbaAdjustment("DetrendedQuantileMapping")
    fast_kind = "dqm"
