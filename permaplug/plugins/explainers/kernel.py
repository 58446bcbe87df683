"""``kernel``: SHAP's model-agnostic KernelExplainer (slow; for checks).

Every window value (step x feature) and every static feature is one player; the background is
summarised to ``n_background`` windows (default 20) drawn from the given background.
Attributions satisfy additivity exactly (it is a constraint of the kernel regression).
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from permaplug.core.explainer import Explainer, ExplainInputs
from permaplug.plugins.explainers._common import (
    check_inputs,
    explain_per_band,
    predict,
    result_dataset,
)


class KernelShap(Explainer):
    """Kernel SHAP per window step, feature and output layer.

    Options: ``nsamples`` (coalitions per window, default ``"auto"`` = 2 M + 2048),
    ``n_background`` (default 20), ``seed`` (default 0). No L1 feature selection: every
    player gets an attribution.
    """

    name = "kernel"
    description = "SHAP KernelExplainer (model-agnostic, slow; for checks)"

    def prepare(self) -> None:
        """Import shap (about 2 s)."""
        import shap  # noqa: F401

    def explain(self, model: torch.nn.Module, background: ExplainInputs,
                explained: ExplainInputs, dynamic_names: list[str],
                static_names: list[str]) -> xr.Dataset:
        import shap

        check_inputs(background, explained, dynamic_names, static_names)
        nsamples = self.options.get("nsamples", "auto")
        rng = np.random.default_rng(int(self.options.get("seed", 0)))
        n_bg = min(int(self.options.get("n_background", 20)), len(background))
        pick = np.sort(rng.choice(len(background), n_bg, replace=False))
        _, w, f = explained.x.shape
        flat = lambda inp, i: np.concatenate(
            [inp.x[i].reshape(len(i), w * f).cpu().numpy(), inp.static[i].cpu().numpy()], 1)
        bg_flat = flat(background, pick)

        def explain_rows(wrapped: torch.nn.Module, idx: np.ndarray) -> tuple[np.ndarray, ...]:
            def f_np(z: np.ndarray) -> np.ndarray:
                z = torch.as_tensor(z, dtype=torch.float32)
                return predict(wrapped, z[:, : w * f].reshape(-1, w, f), z[:, w * f:])

            kx = shap.KernelExplainer(f_np, bg_flat)
            np.random.seed(int(self.options.get("seed", 0)))  # shap samples with np.random
            phi = np.asarray(kx.shap_values(flat(explained, idx), nsamples=nsamples,
                                            l1_reg=False, silent=True))
            if phi.ndim == 2:
                phi = phi[..., None]
            n_layers = phi.shape[-1]
            expected = np.broadcast_to(np.atleast_1d(kx.expected_value), (len(idx), n_layers))
            return (phi[:, : w * f].reshape(len(idx), w, f, n_layers), phi[:, w * f:],
                    expected, f_np(flat(explained, idx)))

        dyn, sta, exp, pred = explain_per_band(model, explained, explain_rows)
        return result_dataset(dyn, sta, exp, pred, explained, dynamic_names, static_names,
                              f"shap.KernelExplainer (nsamples={nsamples}, background={n_bg})")
