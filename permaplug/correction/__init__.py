"""Bias correction of climate-model scenarios, its evaluation report and the scenario signal z.

* :mod:`permaplug.correction.pipeline` -- ``corrected_scenarios``: read, split soil water,
  calibrate, correct;
* :mod:`permaplug.correction.evaluate` -- bias, Kolmogorov-Smirnov distance, scenario spread;
* :mod:`permaplug.correction.signal` -- the scenario signal z (paper eq. 2.1-2.2).
"""
