"""``shap``: SHAP's GradientExplainer (expected gradients), the default explainer.

Works through recurrent, convolutional, normalisation and attention layers (it only needs
autograd), unlike DeepExplainer. Attributions are approximate: their sum matches the
prediction minus the expected value up to the sampling error of ``nsamples`` draws.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from permaplug.core.explainer import Explainer, ExplainInputs
from permaplug.plugins.explainers._common import (
    WithStatic,
    check_inputs,
    explain_per_band,
    predict,
    result_dataset,
    static_is_used,
)


class GradientShap(Explainer):
    """Expected-gradients SHAP values per window step, feature and output layer.

    Options: ``nsamples`` (gradient samples per explained window, default 200),
    ``batch_size`` (samples per forward/backward pass; default ``nsamples``: one pass per
    explained window and output layer), ``seed`` (default 0). The batch size changes the speed,
    not the values beyond float32 rounding (another batch may take another matrix-product path;
    ``tests/test_explain_plugins.py``): batches of 50 and of 200 gave the same attributions bit
    for bit on the five networks of the paper at their default sizes (one CPU thread), one
    batch ~20 % faster.
    """

    name = "shap"
    description = "SHAP GradientExplainer (expected gradients; handles RNN/attention layers)"

    def prepare(self) -> None:
        """Import shap (about 2 s)."""
        import shap  # noqa: F401

    def explain(self, model: torch.nn.Module, background: ExplainInputs,
                explained: ExplainInputs, dynamic_names: list[str],
                static_names: list[str]) -> xr.Dataset:
        import shap

        check_inputs(background, explained, dynamic_names, static_names)
        nsamples = int(self.options.get("nsamples", 200))
        seed = int(self.options.get("seed", 0))
        batch_size = int(self.options.get("batch_size", nsamples))
        # a model that ignores its static input gets zero static attributions (autograd
        # cannot differentiate with respect to an input the graph never used)
        with_static = static_is_used(model, background)
        bg = [background.x.float()] + ([background.static.float()] if with_static else [])

        def explain_rows(wrapped: torch.nn.Module, idx: np.ndarray) -> tuple[np.ndarray, ...]:
            ex = [explained.x[idx].float()]
            ex += [explained.static[idx].float()] if with_static else []
            target = wrapped if with_static else WithStatic(wrapped, explained.static[idx[:1]]
                                                            .float())
            gx = shap.GradientExplainer(target, bg if with_static else bg[0],
                                        batch_size=batch_size)
            phis = gx.shap_values(ex if with_static else ex[0], nsamples=nsamples, rseed=seed)
            phis = phis if isinstance(phis, list) else [phis]
            phi_x = np.asarray(phis[0])
            if phi_x.ndim == 3:  # single-output model
                phi_x = phi_x[..., None]
            phi_s = np.zeros((len(idx), explained.static.shape[-1], phi_x.shape[-1]))
            if with_static:
                phi_s = np.asarray(phis[1])
                phi_s = phi_s if phi_s.ndim == 3 else phi_s[..., None]
            expected = predict(wrapped, background.x.float(), background.static.float()).mean(0)
            pred = predict(wrapped, explained.x[idx].float(), explained.static[idx].float())
            return phi_x, phi_s, np.broadcast_to(expected, pred.shape), pred

        dyn, sta, exp, pred = explain_per_band(model, explained, explain_rows)
        return result_dataset(dyn, sta, exp, pred, explained, dynamic_names, static_names,
                              f"shap.GradientExplainer (nsamples={nsamples})")
