"""``write_report``: one self-contained HTML file (figures embedded as base64 PNG, inline CSS,
no script, no external resource) summarising one or more run folders.

Sections (each always present; a missing output says which command produces it):
provenance, model comparison, observed vs predicted (paper Figure 4), scenario projections and
projection skill, the extrapolation guard, climate sensitivity, permafrost indicators, SHAP
explanations.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from permaplug import __version__
from permaplug.core import schema
from permaplug.core.atomic import write_text_atomic
from permaplug.core.errors import ConfigError
from permaplug.projection.indicators import RESOLUTION_NOTE, format_thaw_depth
from permaplug.projection.sensitivity import base_lines, pooled_table, read_sensitivity

SECTIONS: tuple[tuple[str, str], ...] = (
    ("provenance", "Data provenance"),
    ("comparison", "Model comparison (test years)"),
    ("figure4", "Observed vs predicted (Figure 4)"),
    ("scenarios", "Scenario projections"),
    ("extrapolation", "Extrapolation guard"),
    ("sensitivity", "Climate sensitivity (air +1/+3/+5 K)"),
    ("indicators", "Permafrost indicators"),
    ("shap", "SHAP explanations"),
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header{background:#16324f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85;font-size:13px}nav{padding:8px 28px;background:#e8edf3;font-size:13px}
nav a{margin-right:14px;color:#16324f}main{padding:8px 28px 40px;max-width:1500px}
section{background:#fff;border:1px solid #dde3ea;border-radius:6px;margin:18px 0;
padding:6px 18px 14px}h2{font-size:18px;border-bottom:1px solid #dde3ea;padding-bottom:6px}
h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px}
th,td{border:1px solid #d5dbe3;padding:3px 8px;text-align:right}th{background:#eef2f6}
td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #e3e7ec;margin:6px 0}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600}
.demo{background:#fff1c2;color:#6b4e00}.real{background:#d6f5dd;color:#145a26}
.missing{color:#8a5a00;font-style:italic}
.warn{background:#fde2e1;border:1px solid #d9534f;color:#7a1f1c;padding:6px 10px;border-radius:4px}.small{font-size:12px;color:#555}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _missing(text: str) -> str:
    return f'<p class="missing">{_e(text)}</p>'


def _table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    head = "".join(f'<th class="{"l" if frame[c].dtype == object else ""}">{_e(c)}</th>'
                   for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = r[c]
            if isinstance(v, (float, np.floating)):
                cells.append(f"<td>{_e(floats.format(v)) if np.isfinite(v) else _e(v)}</td>")
            else:
                cells.append(f'<td class="l">{_e(v)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _config(run: Path) -> dict:
    import yaml

    path = run / "config.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}


def _label(run: Path) -> str:
    cfg, metrics = _config(run), _json(run / "metrics.json")
    return str((cfg.get("resolved") or {}).get("data") or metrics.get("data") or "unknown data")


def _badge(label: str) -> str:
    demo = schema.DEMO_LABEL in label
    cls = "demo" if demo else "real"
    note = " &mdash; emulator results, not observations" if demo else ""
    return f'<span class="badge {cls}">data: {_e(label)}</span>{note}'


def _recipe_summary(cfg: dict) -> str:
    statics = ("all" if cfg.get("features") is None else "those selected") \
        if cfg.get("static") is None else (", ".join(cfg["static"]) or "none")
    return (f"{cfg.get('recipe', 'paper')} (band identity "
            f"{'on' if cfg.get('band_identity', True) else 'off'}; statics {statics}; "
            f"projections {cfg.get('corrector', 'qm')})")


def provenance(run: Path) -> str:
    """Where the run's data came from, its configuration and what it holds."""
    cfg = _config(run)
    res = cfg.get("resolved") or {}
    label = _label(run)
    inputs = _json(run / "inputs" / "inputs.json")
    rean = inputs.get("reanalysis") or {}
    rows = [
        ("data", label), ("source", cfg.get("source", "?")),
        ("catalog", cfg.get("catalog") or "bundled demo catalog"),
        ("stored inputs", (f"inputs/{inputs.get('table')}"
                           + (f", inputs/{inputs['catalog_copy']}" if inputs.get("catalog_copy")
                              else "")) if inputs else "not stored (older run folder)"),
        ("reanalysis sha256", (f"{rean['sha256']} ({rean['entry']}: {rean['files']} files, "
                               f"{rean['bytes']} bytes)") if rean else "not recorded"),
        ("table span", " .. ".join(res.get("table_span", [])) or "?"),
        ("training years", "-".join(map(str, cfg.get("train_years", [])))),
        ("test years", "-".join(map(str, cfg.get("test_years", [])))),
        ("windows", ", ".join(f"{k} {v}" for k, v in (res.get("windows") or {}).items())),
        ("models", ", ".join(res.get("models", cfg.get("models", [])))),
        ("recipe", _recipe_summary(cfg)),
        ("inputs", ", ".join(res.get("dynamic_features", [])) or "?"),
        ("scenario signal z", ("an input" if "z" in res.get("dynamic_features", [])
                               else "not an input") if res.get("dynamic_features")
         else str(cfg.get("use_z", "?"))),
        ("provenance", res.get("provenance") or "not recorded"),
        ("permaplug", res.get("permaplug_version", "?")),
    ]
    body = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>'
                   for k, v in rows)
    return f"<h3>{_e(run.name)}</h3><p>{_badge(label)}</p><table>{body}</table>"


def comparison(run: Path) -> str:
    """The test-period comparison table from ``metrics.json``."""
    metrics = _json(run / "metrics.json")
    if not metrics.get("models"):
        return _missing(f"{run.name}: no metrics.json (the run did not finish)")
    from permaplug.training.tables import comparison_frame, skill_score_frame

    models = metrics["models"]
    frame = comparison_frame(models, {k: m.get("kind", "") for k, m in models.items()})
    skill = skill_score_frame(models)
    years = "-".join(map(str, metrics.get("test_years", [])))
    recipe = _e(str(_config(run).get("recipe", "paper")))
    extra = ("" if skill.empty else
             "<p class='small'>MSE skill score against the training years' monthly climatology "
             "(MSESS; 0 = no better than the climatology) and R² of the anomalies from it, "
             "pooled and per layer:</p>" + _table(skill))
    return (f"<h3>{_e(run.name)}</h3><p class='small'>Recipe {recipe}; test years {_e(years)}; "
            f"RMSE and MAE in degC; data: {_e(metrics.get('data', _label(run)))}</p>"
            + _table(frame) + extra)


def figure4(run: Path) -> str:
    figs = sorted((run / "figures").glob("*.png"),
                  key=lambda f: (not f.stem.startswith("observed"), f.name))
    if not figs:
        return _missing(f"{run.name}: no figures (run `permaplug run`)")
    return f"<h3>{_e(run.name)}</h3>" + "".join(_img(f, f.stem) for f in figs)


def _projection_dirs(run: Path) -> list[Path]:
    return sorted(p.parent for p in (run / "projections").glob("*/projections.nc"))


def scenarios(run: Path) -> str:
    dirs = _projection_dirs(run)
    if not dirs:
        return _missing(f"{run.name}: no projections (run `permaplug project {run}`)")
    parts = [f"<h3>{_e(run.name)}</h3>"]
    for d in dirs:
        s = _json(d / "summary.json")
        parts.append(f"<h3>Corrector {_e(s.get('corrector', d.name))}, "
                     f"{_e(s.get('historical_end', ''))} &rarr; {_e(s.get('end', ''))}-12 "
                     f"<span class='small'>data: {_e(s.get('data', ''))}</span></h3>")
        pair = s.get("scenario_pair") or []
        diff = s.get(s.get("difference_key") or "") or {}
        if diff and len(pair) == 2:
            rows = [{"model": m, **{f"{pair[1]} - {pair[0]} stl1, {k} (degC)": v
                                    for k, v in d2.items()}}
                    for m, d2 in diff.items()]
            parts.append(_table(pd.DataFrame(rows), "{:+.3f}"))
        parts.append(skill_tables(d, str(s.get("data", ""))))
        for f in sorted(d.glob("projection_*.png")):
            parts.append(_img(f, f.stem))
    return "".join(parts)


def extrapolation_section(run: Path) -> str:
    """Per projection: a visible note when inputs pass the guard, and the worst rows."""
    from permaplug.projection import extrapolation as guard

    dirs = [d for d in _projection_dirs(run) if (d / guard.FILE).exists()]
    if not dirs:
        return _missing(f"{run.name}: no extrapolation table (run `permaplug project {run}`)")
    parts = [(f"<h3>{_e(run.name)}</h3><p class='small'>Per scenario and input: share of the "
             "projected months' inputs outside the training range (min..max of the training "
             "years) and the largest distance from the training mean in training SD.</p>")]
    for d in dirs:
        frame = guard.read_table(d)
        text = guard.warning_text(frame)
        parts.append(f"<h3>{_e(d.name)} <span class='small'>data: "
                     f"{_e(frame['data'].iloc[0] if len(frame) else '')}</span></h3>")
        parts.append(f"<p class='warn'>&#9888; {_e(text)}.</p>" if text else
                     f"<p class='small'>No input beyond {guard.GUARD_SD:g} training SD outside "
                     "the training range.</p>")
        top = (frame.sort_values("max_sd", ascending=False).drop_duplicates("feature").head(8)
               [["feature", "kind", "scenario", "share_outside", "max_sd", "train_min",
                 "train_max", "projected_min", "projected_max"]])
        parts.append(_table(top))
    return "".join(parts)


def sensitivity_section(run: Path) -> str:
    """The climate sensitivity test of each projection (``sensitivity.csv``/``.png``)."""
    dirs = [d for d in _projection_dirs(run) if (d / "sensitivity.csv").exists()]
    if not dirs:
        return _missing(f"{run.name}: no sensitivity test (run `permaplug project {run}`)")
    parts = [f"<h3>{_e(run.name)}</h3>"]
    for d in dirs:
        rows, notes = read_sensitivity(d / "sensitivity.csv")
        parts.append(f"<h3>{_e(d.name)}</h3><p class='small'>Mean response of each layer "
                     "(over the period's months and units) to dK added to the air and skin "
                     "temperature inputs; the emulator column is the physics rerun with the "
                     f"same perturbation. data: {_e(_json(d / 'summary.json').get('data', ''))}"
                     "</p>" + "".join(f"<p class='small'>{_e(n)}</p>"
                                      for n in [*base_lines(rows), *notes]))
        parts.append(_table(pooled_table(rows), "{:+.3f}"))
        if (d / "sensitivity.png").exists():
            parts.append(_img(d / "sensitivity.png", "sensitivity"))
    return "".join(parts)


SKILL_TEXT = {
    "model_error": ("Model error alone: the networks fed the very forcing the truth run used, "
                    "compared month by month with the truth (RMSE, degC)"),
    "end_to_end_climatology": ("End to end: the projections on bias-corrected climate-model "
                               "forcing against the truth as monthly climatologies over the "
                               "period (RMSE of the 12 calendar-month means per unit and "
                               "layer, degC)"),
}


def skill_tables(d: Path, label: str) -> str:
    """The projection folder's ``skill.csv`` (model x scenario per kind and period, layers
    ``all`` and ``stl1``) and ``scenario_difference.csv`` (truth next to each model);
    ``label``: the projections' data label."""
    parts = []
    if (d / "skill.csv").exists():
        sk = _read_csv(d / "skill.csv")
        sk = sk[sk["layer"].isin(["all", "stl1"])]
        for kind, text in SKILL_TEXT.items():
            sub = sk[sk["kind"] == kind]
            if sub.empty:
                continue
            piv = sub.pivot_table(index=["period", "model"], columns=["layer", "scenario"],
                                  values="rmse_degC")
            piv = piv.reindex(columns=sorted(piv.columns, key=lambda c: (c[0] != "all", c[1])))
            piv.columns = [f"{s} {lay}" for lay, s in piv.columns]
            parts.append(f"<p class='small'>{_e(text)}; layer <b>all</b> pools the four "
                         "layers.</p>" + _table(piv.reset_index()))
    if (d / "scenario_difference.csv").exists():
        diff = _read_csv(d / "scenario_difference.csv")
        if len(diff):
            piv = diff.pivot_table(index=["pair", "period", "layer"], columns="source",
                                   values="value_degC")
            order = ["truth"] * ("truth" in piv.columns) + [c for c in piv.columns
                                                            if c != "truth"]
            parts.append("<p class='small'>Highest minus lowest scenario, mean over units and "
                         "months (degC): the emulator truth next to each model.</p>"
                         + _table(piv[order].reset_index(), "{:+.3f}"))
    if parts:
        note = ("These are emulator results (data: demo emulator): the truth is the demo "
                "emulator's own soil temperature under each scenario, not observations."
                if schema.DEMO_LABEL in label else
                f"Truth from the catalog's scenario_truth entries (data: {label}).")
        parts.insert(0, f"<h3>Projection skill against the scenario truth</h3>"
                        f"<p class='small'>{_e(note)}</p>")
    return "".join(parts)


def _thaw_summary(per_year: pd.DataFrame) -> pd.DataFrame:
    """Median thaw depth and share of years with near-surface permafrost per series and unit."""
    ucol = "band" if "band" in per_year else "cell"  # gridded rows carry their band
    rows = []
    for (model, series), g in per_year.groupby(["model", "series"], sort=False):
        row = {"model": model, "series": series,
               "years": f"{int(g['year'].min())}-{int(g['year'].max())}"}
        for u, gu in g.groupby(ucol):
            row[f"{ucol} {u}"] = (f"{format_thaw_depth(float(np.median(gu['thaw_depth_m'])))}"
                                  f" / {100 * gu['near_surface_permafrost'].mean():.0f} %")
        rows.append(row)
    return pd.DataFrame(rows)


def indicator_section(run: Path) -> str:
    dirs = [d for d in _projection_dirs(run) if (d / "indicators_years.csv").exists()]
    if not dirs:
        return _missing(f"{run.name}: no indicators (run `permaplug project {run}`)")
    parts = [f"<h3>{_e(run.name)}</h3>",
             ("<p class='small'>Per cell: median thaw depth of the annual-maximum profile / "
              "share of years with near-surface permafrost (a layer at or below 0 &deg;C all "
              "year for at least two consecutive years).</p>"),
             f"<p class='small'>{_e(RESOLUTION_NOTE)}.</p>"]
    for d in dirs:
        parts.append(f"<h3>{_e(d.name)}</h3>")
        parts.append(_table(_thaw_summary(_read_csv(d / "indicators_years.csv"))))
        for f in sorted(d.glob("thaw_depth_*.png")):
            parts.append(_img(f, f.stem))
    return "".join(parts)


def shap_section(run: Path) -> str:
    dirs = sorted(p.parent for p in (run / "explanations").glob("*/scores.csv"))
    if not dirs:
        return _missing(f"{run.name}: no explanations (run `permaplug explain {run}`)")
    parts = [f"<h3>{_e(run.name)}</h3>"]
    for d in dirs:
        add = _json(d / "additivity.json")
        parts.append(f"<p class='small'>{_e(d.name)}: {add.get('n_background', '?')} background"
                     f" / {add.get('n_explained', '?')} explained test windows; data: "
                     f"{_e(add.get('data', ''))}</p>")
        if add.get("models"):
            gaps = pd.DataFrame([{"model": m, **g} for m, g in add["models"].items()])
            gaps = gaps[["model", *[c for c in gaps.columns if c not in ("model", "method")],
                         *(["method"] if "method" in gaps else [])]]
            parts.append(_table(gaps, "{:.4f}"))
        scores = _read_csv(d / "scores.csv")
        top = scores[scores["rank"] <= 5][["model", "rank", "feature", "kind", "score"]]
        parts.append(_table(top, "{:.4f}"))
        parts.append(_scenario_ranking(d, add))
        for f in sorted(d.glob("shap_*.png")):
            parts.append(_img(f, f.stem))
    return "".join(parts)


def _scenario_ranking(d: Path, add: dict) -> str:
    """The test and scenario rankings side by side, or the note saying why there is none."""
    scen = add.get("scenario_windows") or {}
    if not (d / "rankings.csv").exists():
        why = scen.get("skipped") or "explanations written before scenario windows existed"
        return _missing(f"Scenario windows not explained: {why}")
    both = _read_csv(d / "rankings.csv")
    both = both[both["rank"] <= 10].drop(columns=[c for c in ("data",) if c in both])
    years = "-".join(map(str, scen.get("years", [])))
    return (f"<p class='small'>Rankings side by side: test windows ({add.get('n_explained', '?')}"
            f" explained) vs scenario windows ({_e(scen.get('scenario', '?'))} {_e(years)}, "
            f"projection {_e(scen.get('projection', '?'))}, {scen.get('n_explained', '?')} "
            f"explained; data: {_e(scen.get('data', ''))}); scores in degC.</p>"
            + _table(both, "{:.4f}"))


BUILDERS = {"provenance": provenance, "comparison": comparison, "figure4": figure4,
            "scenarios": scenarios, "extrapolation": extrapolation_section,
            "sensitivity": sensitivity_section,
            "indicators": indicator_section, "shap": shap_section}


def render(run_dirs: list[Path]) -> str:
    """The report's HTML text."""
    labels = sorted({_label(r) for r in run_dirs})
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title in SECTIONS)
    body = []
    for sid, title in SECTIONS:
        inner = "".join(BUILDERS[sid](r) for r in run_dirs)
        body.append(f'<section id="{sid}"><h2>{_e(title)}</h2>{inner}</section>')
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>permaplug report: {_e(', '.join(r.name for r in run_dirs))}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>permaplug report</h1><p>{len(run_dirs)} run(s); "
        f"data: {_e('; '.join(labels))}; generated {now} by permaplug {_e(__version__)}</p>"
        f"</header><nav>{nav}</nav><main>{''.join(body)}</main></body></html>\n"
    )


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write the self-contained HTML report of ``run_dirs`` to ``out`` (atomically)."""
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise ConfigError("report: give at least one run folder")
    for r in run_dirs:
        if not (r / "config.yaml").exists():
            raise ConfigError(f"{r}: not a permaplug run folder (no config.yaml)")
    return write_text_atomic(Path(out), render(run_dirs))
