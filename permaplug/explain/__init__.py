"""Explanations of trained networks (SHAP scores per feature; uses explainer plugins)."""
