"""The comparison table of every model and baseline (paper Table 2 layout), Markdown and CSV."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from permaplug.core import schema
from permaplug.core.atomic import write_text_atomic


def comparison_frame(metrics: dict[str, dict], kinds: dict[str, str]) -> pd.DataFrame:
    """One row per model: pooled RMSE, MAE, R² (degC) then RMSE per layer; networks first,
    each group sorted by pooled RMSE."""
    rows = []
    for name, m in metrics.items():
        row = {"model": name, "kind": kinds.get(name, "network"),
               "RMSE": m["overall"]["rmse"], "MAE": m["overall"]["mae"], "R2": m["overall"]["r2"]}
        if "msess" in m["overall"]:  # runs before these scores existed lack them
            row["MSESS"] = m["overall"]["msess"]
            row["anom R2"] = m["overall"]["anom_r2"]
        for layer in schema.TARGETS:
            row[f"RMSE {layer}"] = m["per_layer"].get(layer, {}).get("rmse", float("nan"))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["_order"] = (frame["kind"] != "network").astype(int)
    return frame.sort_values(["_order", "RMSE"]).drop(columns="_order").reset_index(drop=True)


def skill_score_frame(metrics: dict[str, dict]) -> pd.DataFrame:
    """MSE skill score against the training climatology and anomaly R², pooled (``all``) and
    per layer: one row per model (networks and baselines), columns ``model, MSESS all,
    MSESS stl1.., anom R2 all, anom R2 stl1..`` (empty for runs without these scores)."""
    rows = []
    for name, m in metrics.items():
        if "msess" not in m.get("overall", {}):
            continue
        row = {"model": name, "MSESS all": m["overall"]["msess"]}
        for layer in schema.TARGETS:
            row[f"MSESS {layer}"] = m["per_layer"].get(layer, {}).get("msess", float("nan"))
        row["anom R2 all"] = m["overall"]["anom_r2"]
        for layer in schema.TARGETS:
            row[f"anom R2 {layer}"] = m["per_layer"].get(layer, {}).get("anom_r2",
                                                                         float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def write_comparison(frame: pd.DataFrame, out_dir: Path, label: str, test_years: tuple[int, int],
                     n_units: int, metrics: dict[str, dict] | None = None) -> tuple[Path, Path]:
    """Write ``comparison.md`` and ``comparison.csv`` (first line ``# data: <label>``)."""
    md = [
        f"# Test-period skill, {test_years[0]}-{test_years[1]}",
        "",
        f"data: {label}",
        "",
        (f"Pooled over {n_units} spatial units x {len(schema.TARGETS)} layers (RMSE and MAE in "
         "degC; R² of the pooled series; MSESS = 1 - MSE / MSE of the training years' monthly "
         "climatology; anom R2 = R² of the anomalies from that climatology), then RMSE per "
         "layer."),
        "",
    ]
    cols = list(frame.columns)
    md.append("| " + " | ".join(cols) + " |")
    md.append("|" + "|".join("---" if c in ("model", "kind") else "---:" for c in cols) + "|")
    for _, r in frame.iterrows():
        md.append("| " + " | ".join(
            str(r[c]) if c in ("model", "kind") else f"{r[c]:.3f}" for c in cols) + " |")
    skill = skill_score_frame(metrics) if metrics else pd.DataFrame()
    if len(skill):
        md += ["", ("MSE skill score against the training years' monthly climatology and R² of "
               "the anomalies from it, pooled and per layer:"), ""]
        cols = list(skill.columns)
        md.append("| " + " | ".join(cols) + " |")
        md.append("|---|" + "|".join("---:" for _ in cols[1:]) + "|")
        for _, r in skill.iterrows():
            md.append("| " + " | ".join(
                str(r[c]) if c == "model" else f"{r[c]:.3f}" for c in cols) + " |")
    md_path = write_text_atomic(out_dir / "comparison.md", "\n".join(md) + "\n")
    buf = io.StringIO()
    buf.write(f"# data: {label}\n")
    frame.to_csv(buf, index=False, float_format="%.6g")
    csv_path = write_text_atomic(out_dir / "comparison.csv", buf.getvalue())
    return md_path, csv_path
