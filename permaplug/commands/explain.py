"""``permaplug explain``: SHAP scores per feature for a run's networks (paper Figure 10)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from permaplug.commands.options import check_run_folder, quiet_option


@click.command(name="explain")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--explainer", default="shap", show_default=True,
              help="Explainer plugin: shap (GradientExplainer) or kernel (slow, for checks).")
@click.option("--n-background", type=int, default=100, show_default=True,
              help="Background windows drawn from the test years.")
@click.option("--n-explained", type=int, default=10, show_default=True,
              help="Explained windows drawn from the test years (spread over every band).")
@click.option("--model", "models", multiple=True, help="Explain only this model (repeatable).")
@click.option("--nsamples", type=int, default=None,
              help="Samples per explained window (explainer option; default: the plugin's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Window selection seed.")
@click.option("--projection", default=None, metavar="NAME",
              help="Projection folder (RUN_DIR/projections/NAME) whose highest scenario's last "
                   "decade is explained too (default: the one projected furthest).")
@quiet_option
def explain(run_dir: Path, explainer: str, n_background: int, n_explained: int,
            models: tuple[str, ...], nsamples: int | None, seed: int, projection: str | None,
            quiet: bool) -> None:
    """Explain a run's networks with SHAP (scores, top-15 bars, additivity gap)."""
    from permaplug.core.plugins import get_registry

    check_run_folder(run_dir)
    get_registry().info("explainer", explainer)  # an unknown name fails before any import
    from permaplug.core.atomic import check_writable
    from permaplug.explain.pipeline import explain_run

    check_writable(run_dir / "explanations")

    options = {"nsamples": nsamples} if nsamples else {}
    out = explain_run(run_dir, explainer, n_background, n_explained, list(models) or None,
                      seed=seed, options=options, progress=not quiet, projection=projection)
    doc = json.loads((out / "additivity.json").read_text(encoding="utf-8"))
    click.echo(f"data: {doc['data']}")
    click.echo(f"explanations ({explainer}, {doc['n_background']} background / "
               f"{doc['n_explained']} explained test windows): {out}")
    for model, g in doc["models"].items():
        click.echo(f"  {model}: additivity gap mean {g['mean_abs_gap_degC']:.4f} degC "
                   f"({100 * g['relative_gap']:.1f} % of |prediction - expected value|; "
                   f"{g.get('method', explainer)})")
    scen = doc.get("scenario_windows") or {}
    if "skipped" in scen:
        click.echo(f"note: scenario windows not explained: {scen['skipped']}")
    elif scen:
        click.echo(f"scenario windows ({scen['scenario']} {scen['years'][0]}-{scen['years'][1]} "
                   f"of projection {scen['projection']}, {scen['n_explained']} explained; data: "
                   f"{scen['data']}): rankings side by side in {out / 'rankings.csv'}")
        import pandas as pd

        both = pd.read_csv(out / "rankings.csv", comment="#")
        for model, rows in both[both["rank"] <= 5].groupby("model", sort=False):
            click.echo(f"  {model}: test windows | scenario windows (mean |SHAP|, degC)")
            for r in rows.itertuples():
                click.echo(f"    {r.rank}. {r.test_feature} {r.test_score:.3f} | "
                           f"{r.scenario_feature} {r.scenario_score:.3f}")
