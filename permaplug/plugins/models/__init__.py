"""Built-in model plugins, registered through the `permaplug` entry-point group.

Five networks (``tcn``, ``transformer``, ``conv1dlstm``, ``gru``, ``bilstm``) and three
baselines (``persistence``, ``climatology``, ``seasonal-naive``). ``template.py`` shows how to
write another one.
"""
from __future__ import annotations

from permaplug.core.hookspecs import hookimpl
from permaplug.plugins.models.bilstm import BiLSTMModel
from permaplug.plugins.models.climatology import Climatology
from permaplug.plugins.models.conv1dlstm import Conv1DLSTMModel
from permaplug.plugins.models.gru import GRUModel
from permaplug.plugins.models.persistence import Persistence
from permaplug.plugins.models.seasonal_naive import SeasonalNaive
from permaplug.plugins.models.tcn import TCNModel
from permaplug.plugins.models.transformer import TransformerModel

NETWORKS = (TCNModel, TransformerModel, Conv1DLSTMModel, GRUModel, BiLSTMModel)
BASELINES = (Persistence, Climatology, SeasonalNaive)


@hookimpl
def register_models(register):
    """Register the built-in networks and baselines."""
    for cls in NETWORKS + BASELINES:
        register(cls)
