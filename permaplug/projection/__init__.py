"""Scenario projections of soil temperature and permafrost indicators.

* :mod:`permaplug.projection.tables` -- the historical table continued by a corrected scenario;
* :mod:`permaplug.projection.indicators` -- pure functions on ``(time, band, layer)`` degC arrays;
* :mod:`permaplug.projection.skill` -- projections against the emulator's scenario truth (model
  error alone, end-to-end climatology) and the scenario differences;
* :mod:`permaplug.projection.truth_forcing` -- the historical table continued by the truth's own
  forcing (for the model-error skill);
* :mod:`permaplug.projection.figures` -- scenario panels and thaw-depth figures;
* :mod:`permaplug.projection.sensitivity` -- response of every layer to +1/+3/+5 K of air
  temperature, networks next to the emulator rerun (:mod:`permaplug.projection.rerun`);
* :mod:`permaplug.projection.pipeline` -- ``project_run``: everything above for one run folder.
"""
