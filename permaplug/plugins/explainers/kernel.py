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
from permaplug.plugins.explainers._common import FixedBand, check_inputs, predict, result_dataset


class KernelShap(Explainer):
    """Kernel SHAP per window step, feature and output layer.

    Options: ``nsamples`` (coalitions per window, default ``"auto"`` = 2 M + 2048),
    ``n_background`` (default 20), ``seed`` (default 0). No L1 feature selection: every
    player gets an attribution.
    """

    name = "kernel"
    description = "SHAP KernelExplainer (model-agnostic, slow; for checks)"

    def explain(self, model: torch.nn.Module, background: ExplainInputs,
                explained: ExplainInputs, dynamic_names: list[str],
                static_names: list[str]) -> xr.Dataset:
        import shap

        check_inputs(background, explained, dynamic_names, static_names)
        nsamples = self.options.get("nsamples", "auto")
        rng = np.random.default_rng(int(self.options.get("seed", 0)))
        n_bg = min(int(self.options.get("n_background", 20)), len(background))
        pick = np.sort(rng.choice(len(background), n_bg, replace=False))
        n, w, f = explained.x.shape
        n_static = explained.static.shape[-1]
        flat = lambda inp, i: np.concatenate(
            [inp.x[i].reshape(len(i), w * f).cpu().numpy(), inp.static[i].cpu().numpy()], 1)
        bg_flat = flat(background, pick)
        was_training = model.training
        model.eval()
        bands = explained.band.cpu().numpy()
        dyn = sta = exp = pred = None
        try:
            for b in np.unique(bands):
                idx = np.flatnonzero(bands == b)
                wrapped = FixedBand(model, int(b)).eval()

                def f_np(z: np.ndarray, _m: torch.nn.Module = wrapped) -> np.ndarray:
                    z = torch.as_tensor(z, dtype=torch.float32)
                    return predict(_m, z[:, : w * f].reshape(-1, w, f), z[:, w * f:])

                kx = shap.KernelExplainer(f_np, bg_flat)
                np.random.seed(int(self.options.get("seed", 0)))  # shap samples with np.random
                phi = np.asarray(kx.shap_values(flat(explained, idx), nsamples=nsamples,
                                                l1_reg=False, silent=True))
                if phi.ndim == 2:
                    phi = phi[..., None]
                n_layers = phi.shape[-1]
                if dyn is None:
                    dyn = np.zeros((n, w, f, n_layers))
                    sta = np.zeros((n, n_static, n_layers))
                    exp = np.zeros((n, n_layers))
                    pred = np.zeros((n, n_layers))
                dyn[idx] = phi[:, : w * f].reshape(len(idx), w, f, n_layers)
                sta[idx] = phi[:, w * f:]
                exp[idx] = np.broadcast_to(np.atleast_1d(kx.expected_value), (len(idx), n_layers))
                pred[idx] = f_np(flat(explained, idx))
        finally:
            model.train(was_training)
        return result_dataset(dyn, sta, exp, pred, explained, dynamic_names, static_names,
                              f"shap.KernelExplainer (nsamples={nsamples}, background={n_bg})")
