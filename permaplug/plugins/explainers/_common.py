"""What both built-in explainers share: a band-fixed view of a model and the result layout.

A window's band enters the network through an embedding lookup, which has no gradient and no
meaningful "missing" value, so the built-in explainers attribute the output *within a band*:
windows of band ``b`` are explained by the model with the band fixed to ``b``, against the
whole background run with that band as well. The expected value is therefore band-conditioned
and the result's ``expected_value`` has dims ``(sample, layer)`` (it broadcasts in the
contract's additivity formula exactly like a ``(layer,)`` value).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from permaplug.core.errors import ConfigError
from permaplug.core.explainer import ExplainInputs


class FixedBand(torch.nn.Module):
    """``model`` with the band fixed: ``(x [B,W,F], static [B,S]) -> [B, n_layers]``."""

    def __init__(self, model: torch.nn.Module, band: int) -> None:
        super().__init__()
        self.model = model
        self.band = int(band)

    def forward(self, x: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        if static is None:
            static = x.new_zeros((x.shape[0], 0))
        band = torch.full((x.shape[0],), self.band, dtype=torch.int64, device=x.device)
        return self.model(x, band, static)


def static_is_used(model: torch.nn.Module, inputs: ExplainInputs, rows: int = 8) -> bool:
    """True when ``model``'s output depends on its ``static`` input (autograd reaches it).

    A model that ignores ``static`` (a third party's, or one trained without static features)
    cannot be differentiated with respect to it; its static attributions are exactly zero.
    Checked in eval mode on the first ``rows`` windows; the model's mode is restored.
    """
    if inputs.static.shape[-1] == 0:
        return False
    was_training = model.training
    model.eval()
    try:
        static = inputs.static[:rows].float().clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(inputs.x[:rows].float(), inputs.band[:rows], static)
            (grad,) = torch.autograd.grad(out.sum(), [static], allow_unused=True)
    finally:
        model.train(was_training)
    return grad is not None


class WithStatic(torch.nn.Module):
    """A band-fixed model taking ``x`` only; ``static`` is a constant it does not use."""

    def __init__(self, model: torch.nn.Module, static_row: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.static_row = static_row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.static_row.expand(x.shape[0], -1))


def check_inputs(background: ExplainInputs, explained: ExplainInputs, dynamic_names: list[str],
                 static_names: list[str]) -> None:
    """Raise ConfigError when the inputs and the feature names disagree."""
    if len(background) == 0 or len(explained) == 0:
        raise ConfigError("explainer needs at least one background and one explained window")
    for what, inp in (("background", background), ("explained", explained)):
        if inp.x.shape[-1] != len(dynamic_names):
            raise ConfigError(f"{what} windows have {inp.x.shape[-1]} dynamic features but "
                              f"{len(dynamic_names)} names were given")
        if inp.static.shape[-1] != len(static_names):
            raise ConfigError(f"{what} windows have {inp.static.shape[-1]} static features but "
                              f"{len(static_names)} names were given")
    if background.x.shape[1:] != explained.x.shape[1:]:
        raise ConfigError(f"background windows {tuple(background.x.shape[1:])} and explained "
                          f"windows {tuple(explained.x.shape[1:])} differ in shape")


def result_dataset(dynamic: np.ndarray, static: np.ndarray, expected: np.ndarray,
                   prediction: np.ndarray, explained: ExplainInputs, dynamic_names: list[str],
                   static_names: list[str], method: str) -> xr.Dataset:
    """The contract's Dataset from arrays ``[N,W,F,L]``, ``[N,S,L]``, ``[N,L]``, ``[N,L]``."""
    n, w = dynamic.shape[:2]
    n_layers = prediction.shape[-1]
    return xr.Dataset(
        {
            "dynamic": (("sample", "step", "feature", "layer"), dynamic.astype(np.float64)),
            "static": (("sample", "static_feature", "layer"), static.astype(np.float64)),
            "expected_value": (("sample", "layer"), expected.astype(np.float64)),
            "prediction": (("sample", "layer"), prediction.astype(np.float64)),
        },
        coords={
            "sample": np.arange(n), "step": np.arange(-w, 0), "feature": list(dynamic_names),
            "static_feature": list(static_names), "layer": np.arange(n_layers),
            "band": ("sample", explained.band.cpu().numpy().astype(np.int64)),
        },
        attrs={"method": method, "units": "normalised target units",
               "step_convention": "step -1 is the window's last month"},
    )


def predict(model: torch.nn.Module, x: torch.Tensor, static: torch.Tensor,
            batch: int = 4096) -> np.ndarray:
    """Model outputs ``[N, L]`` (numpy, no gradient) in batches."""
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            outs.append(model(x[i:i + batch], static[i:i + batch]).cpu().numpy())
    return np.concatenate(outs, 0)


def explain_per_band(
    model: torch.nn.Module, explained: ExplainInputs,
    explain_rows: Callable[[FixedBand, np.ndarray], tuple[np.ndarray, ...]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``explain_rows(wrapped, rows)`` once per band of the explained windows.

    ``wrapped`` is ``model`` with that band fixed (``FixedBand``, eval mode), ``rows`` the
    indices of the explained windows of the band; it returns ``(dynamic [k, W, F, L],
    static [k, S, L], expected [k, L], prediction [k, L])`` for those ``k`` rows. Returns the
    same four arrays for all ``N`` windows; ``model``'s training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    bands = explained.band.cpu().numpy()
    out: list[np.ndarray] = []
    try:
        for b in np.unique(bands):
            rows = np.flatnonzero(bands == b)
            parts = explain_rows(FixedBand(model, int(b)).eval(), rows)
            if not out:
                out = [np.zeros((len(bands), *np.shape(part)[1:])) for part in parts]
            for full, part in zip(out, parts, strict=True):
                full[rows] = part
    finally:
        model.train(was_training)
    dyn, sta, exp, pred = out
    return dyn, sta, exp, pred
