"""``permaplug run``: train and evaluate networks and baselines, then project, explain, report."""
from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from permaplug.commands.options import (
    catalog_option,
    continuation_option,
    corrector_option_option,
    parse_key_values,
    quiet_option,
    scenario_pair_option,
)
from permaplug.core.atomic import check_writable
from permaplug.core.errors import ConfigError, NotAvailableError, PermaplugError
from permaplug.scale.options import dask_scheduler_option

# option name -> RunConfig field, for options that map one to one
_FIELDS = {
    "source": "source", "catalog_path": "catalog", "spatial": "spatial", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr", "lr_schedule": "lr_schedule",
    "weight_decay": "weight_decay", "seed": "seed", "device": "device",
    "val_fraction": "val_fraction", "early_stopping": "early_stopping", "use_z": "use_z",
    "threads": "threads",
}
_STEPS = {
    "project": ("permaplug.projection.pipeline", "project_run"),
    "explain": ("permaplug.explain.pipeline", "explain_run"),
    "report": ("permaplug.report.html", "write_report"),
}


def _step(name: str):
    """The post-training function of step ``name`` (NotAvailableError if its module is absent)."""
    module, func = _STEPS[name]
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise NotAvailableError(f"the {name} step is not available ({module}.{func}: {exc}); "
                                f"run with --no-{name}") from None


def _site_steps(cfg, steps: dict) -> dict:
    """Drop the steps a site run cannot do, each with a note: projections need a scenario
    entry in the catalog; SHAP attributions are defined per band/cell, not per site."""
    if cfg.spatial != "sites":
        return steps
    from permaplug.core.catalog import load_catalog

    kept = dict(steps)
    if "project" in kept and not load_catalog(cfg.catalog).find_all("scenario"):
        kept.pop("project")
        click.echo("note: projection skipped: the site catalog has no scenario entry")
    if "explain" in kept:
        kept.pop("explain")
        click.echo("note: SHAP explanation skipped: not defined for --spatial sites")
    return kept


def _explicit(ctx: click.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")


def _catalog_defaults(catalog: str | None) -> dict:
    """The catalog's ``metadata.run_defaults`` (options a bundled real catalog such as
    ``toolik`` brings: source, spatial, years, features...); command-line options and --config
    win."""
    if not catalog:
        return {}
    from permaplug.core.catalog import load_catalog

    defaults = load_catalog(catalog).metadata.get("run_defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"catalog {catalog}: metadata.run_defaults must be a mapping")
    import dataclasses

    from permaplug.training.config import RunConfig

    known = {f.name for f in dataclasses.fields(RunConfig)} - {"catalog"}
    bad = sorted(set(defaults) - known)
    if bad:
        raise ConfigError(f"catalog {catalog}: metadata.run_defaults has unknown key(s) "
                          f"{', '.join(bad)}; known: {', '.join(sorted(known))}")
    return dict(defaults)


def _recipe_layer(ctx: click.Context, params: dict, loaded: dict, defaults: dict
                  ) -> tuple[dict, bool]:
    """The settings of the run's recipe (``--recipe``, else ``recipe`` in --config, else the
    catalog's run_defaults, else ``paper``) and whether it was chosen explicitly."""
    from permaplug.training.recipe import DEFAULT_RECIPE, load_recipe

    if _explicit(ctx, "recipe"):
        name, explicit = params["recipe"], True
    elif loaded.get("recipe"):
        name, explicit = loaded["recipe"], True
    else:
        name, explicit = defaults.get("recipe") or DEFAULT_RECIPE, False
    settings = dict(load_recipe(str(name)).settings)
    settings["recipe"] = str(name)  # a recipe file is recorded by its path
    return settings, explicit


def _build_config(ctx: click.Context, params: dict):
    """The run's configuration from, lowest to highest precedence: option defaults, the
    default recipe, the catalog's run_defaults, an explicitly chosen recipe (``--recipe`` or
    ``recipe:`` in --config), the --config file, options given on the command line."""
    import yaml

    from permaplug.training.config import RunConfig, parse_hparams, parse_years, resolve_models

    loaded: dict = {}
    if params["config_file"]:
        path = Path(params["config_file"])
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--config {path}: cannot read ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: expected a YAML mapping of run options")
        loaded.pop("resolved", None)
    defaults = _catalog_defaults(params.get("catalog_path") or loaded.get("catalog"))
    recipe, recipe_explicit = _recipe_layer(ctx, params, loaded, defaults)

    cli: dict = {fld: params[opt] for opt, fld in _FIELDS.items()}
    given_cli = {fld for opt, fld in _FIELDS.items() if _explicit(ctx, opt)}
    cli["drop_features"] = list(params["drop_features"])
    given = [f.strip() for item in params["features"] for f in item.split(",") if f.strip()]
    cli["features"] = given or None
    cli["models"] = [m for item in params["models"] for m in item.split(",") if m]
    cli["train_years"], cli["test_years"] = params["train_years"], params["test_years"]
    if params.get("corrector") is not None:
        cli["corrector"] = params["corrector"]
    for opt in ("drop_features", "features", "models", "train_years", "test_years",
                "corrector"):
        if _explicit(ctx, opt):
            given_cli.add(opt)
    data: dict = {k: v for k, v in cli.items() if k not in given_cli}
    layers = ([defaults, recipe] if recipe_explicit else [recipe, defaults])
    for layer in [*layers, loaded, {k: cli[k] for k in given_cli}]:
        data.update(layer)
    if isinstance(data.get("models"), str):
        data["models"] = [data["models"]]
    for opt in ("train_years", "test_years"):
        if isinstance(data[opt], str):
            where = ("--" + opt.replace("_", "-")) if opt in given_cli else opt
            data[opt] = parse_years(data[opt], where)
    origin = f"--config {params['config_file']}" if params["config_file"] else "options"
    cfg = RunConfig.from_dict(data, origin)
    models = resolve_models(cfg.models)
    cfg.hparams = parse_hparams(params["hparams"], models, cfg.hparams)
    for name in cfg.hparams:
        if name not in models:
            raise ConfigError(f"hparams: model {name!r} is not part of this run")
    return cfg, models


def finish_commands(out: Path, steps: list[str], params: dict) -> str:
    """The commands that do ``steps`` (in order) for the trained run ``out``, as one line."""
    project = [f"permaplug project {out}"]
    for opt in ("scenarios", "corrector", "end", "continuation", "scenario_pair"):
        default = {"end": 2030}.get(opt)
        if params.get(opt) not in (None, "", default):
            project.append(f"--{opt.replace('_', '-')} {params[opt]}")
    project += [f"--corrector-option {o}" for o in params.get("corrector_options") or ()]
    cmds = {"project": " ".join(project), "explain": f"permaplug explain {out}",
            "report": f"permaplug report {out} --out {out / 'report.html'}"}
    return "; ".join(cmds[s] for s in steps)


@contextmanager
def _finish_hint(out: Path, step: str, steps: list[str], params: dict) -> Iterator[None]:
    """A failure of a post-training ``step`` says that the trained run is kept and which
    commands finish it (this step and the ones after it)."""
    rest = steps[steps.index(step):]
    hint = (f"the trained run is saved in {out}; finish it with: "
            f"{finish_commands(out, rest, params)}")
    try:
        yield
    except PermaplugError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PermaplugError(f"{step} step: {first} -- {hint}") from exc
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        raise PermaplugError(f"{step} step: {where}{exc.strerror or exc} -- {hint}") from exc
    except Exception:
        click.echo(f"Error: the {step} step failed after training -- {hint}", err=True)
        raise


def _check_scenario_supply(cfg) -> None:
    """The scenario entry must supply what the run's dynamic inputs need (before training)."""
    from permaplug.data.features import PAPER_CALENDAR, paper_features
    from permaplug.projection.supply import check_supply

    drop = set(cfg.drop_features) | (set() if cfg.use_z else {"z"})
    chosen = cfg.features if cfg.features is not None else paper_features(cfg.use_z)
    dynamic = [f for f in chosen if f not in drop]

    def how_to_drop(missing: list[str], have: list[str]) -> str:
        opts = [f"--drop-feature {m}" for m in missing if m in dynamic]
        if "z" in dynamic and "strd" in missing:
            opts.append("--no-z")
        from permaplug.projection.tables import scenario_variables

        keep = [f for f in dynamic if f in have or f in PAPER_CALENDAR]
        keep = [f for f in keep if all(v in have for v in scenario_variables([f]))]
        return (f"leave them out (--features {','.join(keep)}, or {' '.join(opts)}; the run then "
                "uses these and the static features)")

    check_supply(cfg.catalog, dynamic, how_to_drop)
    from permaplug.projection.consistency import check_consistency

    rows = check_consistency(cfg.catalog, dynamic, cfg.allow_inconsistent, cfg.recipe)
    kept = [r for r in rows if not r.consistent and r.feature in dynamic]
    if kept:
        why = kept[0].reason.split(",")[0]
        click.echo(f"note: recipe {cfg.recipe} feeds the projections "
                   f"{', '.join(r.feature for r in kept)} although they mean something else in "
                   f"the scenarios ({why}); see docs/recipes.md")


def _check_scenario_options(params: dict) -> None:
    """Scenario options that contradict each other fail before training."""
    from permaplug.core.scenarios import parse_pair

    pair = parse_pair(params["scenario_pair"])
    chosen = [s for s in (params["scenarios"] or "").split(",") if s]
    if pair and chosen and any(s not in chosen for s in pair):
        raise ConfigError(f"--scenario-pair {params['scenario_pair']}: both must be among "
                          f"--scenarios {params['scenarios']}")


def _background(ctx: click.Context, cfg, params: dict, corrector: str,
                corrector_options: dict):
    """Work of the projection step that needs no trained network, prefetched in a second
    process while the networks train (:mod:`permaplug.commands.background`): returns
    ``(on_inputs, prefetched)`` for ``execute_run`` and ``project_run`` (``(None, None)`` when
    ``PERMAPLUG_BACKGROUND=0``). Once the table is stored: the band table's corrected scenarios
    and scenario truth, and for a demo catalog with a projection ending before the late-century
    period (whose rerun also needs the highest scenario), the emulator's sensitivity rerun for
    the test years."""
    import os

    if os.environ.get("PERMAPLUG_BACKGROUND", "1") == "0":
        return None, None
    from permaplug.commands.background import Prefetch, PrefetchedRerun
    from permaplug.projection.rerun import emulator_rerun, set_emulator_rerun

    prefetch = Prefetch()
    ctx.call_on_close(prefetch.close)
    rerun = emulator_rerun()
    scenarios = [s.strip() for s in (params["scenarios"] or "").split(",") if s.strip()] or None

    def on_inputs(out: Path, prepared) -> None:
        from permaplug.core.catalog import load_catalog
        from permaplug.projection.scenario_sets import scenario_sets, scenario_sets_key
        from permaplug.projection.sensitivity import DELTAS_K, FUTURE, is_demo_catalog
        from permaplug.projection.tables import scenario_variables
        from permaplug.training.inputs import open_stored_table

        cat = load_catalog(cfg.catalog)
        table = open_stored_table(out)  # what project_run reads
        if table is not None and "cell" not in table.dims:
            import pandas as pd

            years = pd.DatetimeIndex(table["time"].values).year
            args = (cat.path, table, corrector, (int(years.min()), int(years.max())),
                    scenarios, dict(corrector_options), params["continuation"],
                    scenario_variables(prepared.normaliser.dynamic_names))
            prefetch.add(scenario_sets_key(*args), scenario_sets, *args)
        metadata = dict(cat.metadata)
        if rerun is not None and is_demo_catalog(metadata) and params["end"] < FUTURE[1]:
            wrapped = PrefetchedRerun(rerun, prefetch)
            wrapped.add(metadata, [(int(cfg.test_years[0]), int(cfg.test_years[1]), None)],
                        int(cfg.window), DELTAS_K)
            set_emulator_rerun(wrapped)
            ctx.call_on_close(lambda: set_emulator_rerun(rerun))
        prefetch.start()

    return on_inputs, prefetch.take


@click.command(name="run")
@click.option("--recipe", default="paper", show_default=True, metavar="NAME|FILE",
              help="Recipe of the run's settings: a bundled one (paper, physical) or a YAML "
                   "file; options given here override it (docs/recipes.md).")
@click.option("--source", default="era5land", show_default=True,
              help="Reanalysis source (catalog entry or source plugin name).")
@click.option("--model", "models", multiple=True, default=("all",), show_default=True,
              help="Model to train (repeat or comma-separate); 'all' = every network. "
                   "Baselines are always evaluated too.")
@catalog_option
@click.option("--spatial", type=click.Choice(["bands", "grid", "sites"]), default="bands",
              show_default=True,
              help="Latitude bands (paper), grid cells with their band as embedding index, or "
                   "observed sites (a catalog's run_defaults may set it).")
@click.option("--epochs", type=int, default=50, show_default=True, help="Training epochs.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Windows per batch.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="cosine",
              show_default=True, help="Learning rate per epoch: constant, or cosine decay.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True,
              help="Adam weight decay (L2 penalty).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True, help="Where to train.")
@click.option("--train-years", default="2001-2018", show_default=True,
              help="Years whose months are training targets (FIRST-LAST).")
@click.option("--test-years", default="2019-2023", show_default=True,
              help="Years whose months are test targets (FIRST-LAST).")
@click.option("--hparam", "hparams", multiple=True, metavar="[MODEL.]KEY=VALUE",
              help="Override a hyper-parameter, e.g. hidden_size=128 or tcn.channels=32.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="YAML file of run options (command-line options win).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: runs/<timestamp>-<source>-<model>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--val-fraction", type=float, default=0.15, show_default=True,
              help="Hold out the last fraction of training months for validation (loss curves, "
                   "early stopping; the recipe may set it: paper 0, as published).")
@click.option("--early-stopping", type=int, default=0, show_default=True, metavar="N",
              help="Stop after N epochs without a better validation loss (0 = off).")
@click.option("--z/--no-z", "use_z", default=True, show_default=True,
              help="Include the scenario signal z as an input feature (paper).")
@click.option("--features", "features", multiple=True, metavar="A,B,...",
              help="Input features by name (comma-separated or repeated): source variables and "
                   "derived features, e.g. t2m,tp,month_sin,z. Default: the catalog's "
                   "run_defaults features, else the paper's inputs.")
@click.option("--drop-feature", "drop_features", multiple=True, metavar="NAME",
              help="Leave an input feature out (repeatable), e.g. --drop-feature year.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (default 1).")
@click.option("--project/--no-project", "do_project", default=True, show_default=True,
              help="Project the trained networks under the scenarios afterwards.")
@click.option("--explain/--no-explain", "do_explain", default=True, show_default=True,
              help="Explain the trained networks (SHAP) afterwards.")
@click.option("--report/--no-report", "do_report", default=True, show_default=True,
              help="Write the HTML report afterwards.")
@click.option("--scenarios", default=None, help="Scenarios to project (comma-separated).")
@continuation_option
@scenario_pair_option
@click.option("--corrector", default=None,
              help="Bias corrector of the projections (default: the recipe's; paper: qm).")
@corrector_option_option
@click.option("--end", type=int, default=2030, show_default=True, help="Last projected year.")
@quiet_option
@dask_scheduler_option
@click.pass_context
def run(ctx: click.Context, **params) -> None:
    """Train and evaluate models; write a run folder (Table 2, Figure 4, checkpoints)."""
    from permaplug.core.plugins import get_corrector
    from permaplug.training.config import CONFIG_FILE, RunConfig

    # the options, model names and catalog are checked before torch or any data is loaded,
    # so that a mistake is answered at once
    checked = None if params["resume"] else _build_config(ctx, params)
    if checked is not None:
        from permaplug.core.catalog import load_catalog
        from permaplug.demo.cache import built_demo_catalog

        given = checked[0].catalog or built_demo_catalog()  # a demo not yet built: later
        if given is not None:
            load_catalog(given).find("reanalysis", checked[0].source)
    cli_options = parse_key_values(params["corrector_options"], "--corrector-option")
    corrector, corrector_options = params["corrector"] or "qm", dict(cli_options)
    if checked is not None:  # the recipe's corrector unless --corrector names another
        corrector = checked[0].corrector
        base = checked[0].corrector_options if not params["corrector"] else {}
        corrector_options = {**base, **cli_options}
        checked[0].corrector_options = corrector_options
    if params["do_project"]:  # a bad corrector name or option fails before training
        get_corrector(corrector)(**corrector_options)
        _check_scenario_options(params)

    from permaplug.scale.launch import scale_out
    from permaplug.training.runs import default_run_dir, execute_run, mark_run_complete

    if not scale_out(ctx, params, _build_config):
        return  # a torchrun rank other than 0: it trained alongside rank 0, writes nothing

    steps = {s: _step(s) for s in ("project", "explain", "report") if params[f"do_{s}"]}
    if params["resume"]:
        if not params["out_dir"]:
            raise ConfigError("--resume needs --out DIR (the run folder to continue)")
        out = Path(params["out_dir"])
        if not (out / CONFIG_FILE).exists():
            raise ConfigError(f"--resume: {out} has no {CONFIG_FILE} (not a run folder)")
        cfg = RunConfig.load(out / CONFIG_FILE)
        given, _ = _build_config(ctx, params)
        fields = [f for f in _FIELDS.values() if f not in ("device", "threads")]
        for fld in [*fields, "train_years", "test_years", "hparams", "drop_features", "models",
                    "features", "recipe"]:
            opt = {"catalog": "catalog_path"}.get(fld, fld)
            if _explicit(ctx, opt) and getattr(given, fld) != getattr(cfg, fld):
                raise ConfigError(f"--resume: {fld} {getattr(given, fld)!r} differs from the "
                                  f"run's {CONFIG_FILE} ({getattr(cfg, fld)!r})")
        for fld in ("device", "threads"):  # where to compute may change on resume
            if _explicit(ctx, fld):
                setattr(cfg, fld, getattr(given, fld))
    else:
        cfg, _models = checked
        out = Path(params["out_dir"]) if params["out_dir"] else default_run_dir(
            cfg.source, [m for v in params["models"] for m in v.split(",") if m])
    steps = _site_steps(cfg, steps)
    check_writable(out)  # a read-only or missing place fails now, not after training
    if params["quiet"] and cfg.catalog is None:  # build the demo data silently if needed
        from permaplug.demo.build import ensure_demo_catalog

        ensure_demo_catalog(progress=False)
    if params["resume"]:
        corrector = params["corrector"] or cfg.corrector
        corrector_options = {**(cfg.corrector_options if not params["corrector"] else {}),
                             **cli_options}
    # the run records its corrector and options (config.yaml), which `permaplug project`
    # takes by default: the finishing commands need not repeat them
    cfg.corrector, cfg.corrector_options = corrector, dict(corrector_options)
    params = {**params, "corrector": None, "corrector_options": []}
    on_inputs = prefetched = None
    if "project" in steps:  # a run that could never be projected stops before training
        _check_scenario_supply(cfg)
        on_inputs, prefetched = _background(ctx, cfg, params, corrector, corrector_options)
    alongside: list = []  # the explanation: forked now, started once the networks are saved
    on_trained = None
    if "project" in steps and "explain" in steps:
        from permaplug.commands.alongside import ExplainAlongside, can_explain_alongside

        if can_explain_alongside(cfg.device, cfg.threads):
            from permaplug.training.loop import configure_threads

            configure_threads(cfg.threads)  # the child's torch on one thread, as execute_run's
            from permaplug.explain.pipeline import prepare_explainer

            with contextlib.suppress(RuntimeError, OSError):  # else: explained after
                job = ExplainAlongside(steps["explain"], out, "shap",
                                       prepare=functools.partial(prepare_explainer, "shap"))
                ctx.call_on_close(job.close)
                alongside.append(job)
                on_trained = lambda run_dir: job.start()
    execute_run(cfg, out, resume=params["resume"], progress=not params["quiet"], echo=click.echo,
                mark_complete=False, on_inputs=on_inputs, on_trained=on_trained)
    click.echo(f"Run written to {out} (comparison: {out / 'comparison.md'})")
    q = not params["quiet"]
    if "project" in steps:
        scen = [s for s in (params["scenarios"] or "").split(",") if s] or None
        with _finish_hint(out, "project", list(steps), params):
            path = steps["project"](out, cfg.catalog, scen, corrector, params["end"],
                                    corrector_options=corrector_options,
                                    continuation=params["continuation"],
                                    scenario_pair=params["scenario_pair"], progress=q,
                                    echo=click.echo, prefetched=prefetched,
                                    on_inputs=alongside[0].projection_inputs if alongside
                                    else None)
        click.echo(f"Projections written to {path}")
    if "explain" in steps:
        path = alongside[0].result() if alongside else None
        if alongside and path is None:
            click.echo(f"note: explaining again in this process (the explanation alongside the "
                       f"projection failed: {alongside[0].error})", err=True)
        if path is None:  # not forked, or the child failed: explain here
            with _finish_hint(out, "explain", list(steps), params):
                path = steps["explain"](out, "shap", progress=q)
        click.echo(f"Explanations written to {path}")
    if "report" in steps:
        with _finish_hint(out, "report", list(steps), params):
            path = steps["report"]([out], out / "report.html")
        click.echo(f"Report written to {path}")
    mark_run_complete(out, ["train", "evaluate", *steps])
