"""Training and evaluation: windows, normalisation, the training loop, checkpoints, metrics,
comparison tables, figures and run folders (``permaplug run``).

Entry points for other parts: :func:`permaplug.training.runs.load_run` and ``Run.predict``.
"""
