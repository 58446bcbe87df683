"""Built-in model plugins, registered through the `permaplug` entry-point group.

Five networks (``tcn``, ``transformer``, ``conv1dlstm``, ``gru``, ``bilstm``) and three
baselines (``persistence``, ``climatology``, ``seasonal-naive``, ``linear``). ``template.py``
shows how to write another one. They are registered by import path (imported when first used),
so that loading the registry -- ``permaplug --help``, ``permaplug plugins`` -- imports no torch.
"""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl

MODELS: dict[str, str] = {
    "tcn": "permaplug.plugins.models.tcn:TCNModel",
    "transformer": "permaplug.plugins.models.transformer:TransformerModel",
    "conv1dlstm": "permaplug.plugins.models.conv1dlstm:Conv1DLSTMModel",
    "gru": "permaplug.plugins.models.gru:GRUModel",
    "bilstm": "permaplug.plugins.models.bilstm:BiLSTMModel",
    "persistence": "permaplug.plugins.models.persistence:Persistence",
    "climatology": "permaplug.plugins.models.climatology:Climatology",
    "seasonal-naive": "permaplug.plugins.models.seasonal_naive:SeasonalNaive",
    "linear": "permaplug.plugins.models.linear:LinearAnomaly",
}
"""Model name -> class import path (networks first, then baselines)."""


@hookimpl
def register_models(register):
    """Register the built-in networks and baselines."""
    for name, target in MODELS.items():
        register(target, name=name)
