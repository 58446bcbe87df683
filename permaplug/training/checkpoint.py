"""Checkpoints: ``model.pt`` (state_dict), ``config.json`` (how to rebuild), ``normaliser.json``.

Loading uses ``torch.load(..., weights_only=True)`` only: no pickle on the data path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.core.errors import DataError
from permaplug.core.model import Model, ModelDims
from permaplug.core.plugins import get_model
from permaplug.training.normalise import Normaliser

MODEL_FILE, CONFIG_FILE, NORMALISER_FILE = "model.pt", "config.json", "normaliser.json"


def save_checkpoint(model: Model, directory: Path, normaliser: Normaliser,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write the three checkpoint files of ``model`` into ``directory`` (each atomically).

    ``model.pt`` is written last, so its presence marks a finished model.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model": model.name, "class": f"{type(model).__module__}.{type(model).__qualname__}",
              "trainable": bool(model.trainable), "dims": model.dims.to_dict(),
              "hparams": model.hparams, **(extra or {})}
    write_text_atomic(directory / CONFIG_FILE, json.dumps(config, indent=1, default=str))
    normaliser.save(directory / NORMALISER_FILE)
    with atomic_path(directory / MODEL_FILE) as tmp:
        torch.save(model.state_dict(), tmp)
    return directory


def safe_load(path: Path, device: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; anything else (pickled code, a corrupt file) is
    refused with a DataError naming the file."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: refused by torch.load(weights_only=True): {first}") from None


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read checkpoint config ({exc})") from None


def load_checkpoint(directory: Path, device: str | torch.device = "cpu") -> Model:
    """Rebuild the model of ``directory`` through its plugin and load its weights (eval mode)."""
    config = read_config(directory)
    cls = get_model(config["model"])
    model = cls(ModelDims(**config["dims"]), **config["hparams"])
    path = directory / MODEL_FILE
    if not path.exists():
        raise DataError(f"{path}: missing (the model did not finish training)")
    state = safe_load(path, device)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise DataError(f"{path}: does not match model {config['model']!r} "
                        f"({str(exc).splitlines()[0]})") from None
    model.to(device)
    model.eval()
    return model
