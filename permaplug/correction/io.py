"""Save and reload fitted correctors (NetCDF; the plugin is named in the file)."""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from permaplug.core.corrector import Corrector
from permaplug.core.errors import ConfigError
from permaplug.core.plugins import get_corrector
from permaplug.correction.xsdba_corrector import STATE_ATTR


def load_corrector(path: Path | str) -> Corrector:
    """Reload a corrector saved with ``Corrector.save``; the file names its plugin."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: corrector file not found")
    try:
        with xr.open_dataset(path) as ds:
            state = ds.load()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable corrector file ({exc})") from exc
    name = state.attrs.get(STATE_ATTR)
    if not name:
        raise ConfigError(f"{path}: no '{STATE_ATTR}' attribute: not a permaplug corrector file")
    return get_corrector(str(name)).from_state(state)
