"""``permaplug demo``: build the bundled demo data (physics emulator on real forcing)."""
from __future__ import annotations

import time
from pathlib import Path

import click

from permaplug.commands.options import quiet_option
from permaplug.core.errors import ConfigError


@click.group(name="demo")
def demo() -> None:
    """Build or locate the bundled demo data."""


@demo.command(name="build")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (default: the user cache folder used by the default catalog).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--resolution", type=float, default=0.5, show_default=True,
              help="Grid spacing in degrees.")
@click.option("--n-cells", type=int, default=None,
              help="Aim for about this many land cells (overrides --resolution).")
@click.option("--steps-per-month", type=int, default=4, show_default=True,
              help="Emulator time steps per month.")
@click.option("--force", is_flag=True, help="Rebuild even if the folder already holds a demo.")
@quiet_option
@click.option("--version", "version", default=None,
              help="Demo data version (emulator parameters) to build; default: the current one. "
                   "Earlier versions keep their own cache folder (catalog name demo-v<N>).")
def build(out: Path | None, seed: int, resolution: float, n_cells: int | None,
          steps_per_month: int, force: bool, quiet: bool, version: str | None) -> None:
    """Build the demo data and its catalog."""
    from permaplug.demo import DEMO_VERSION, build_demo, demo_dir

    version = version or DEMO_VERSION
    target = out or demo_dir(version)
    if (target / "catalog.yaml").exists() and not force:
        click.echo(f"Demo data already built: {target / 'catalog.yaml'} (use --force to rebuild)")
        return
    if out is None and (seed != 0 or resolution != 0.5 or n_cells is not None
                        or steps_per_month != 4):
        raise ConfigError("--seed, --resolution, --n-cells and --steps-per-month need --out: "
                          "the default cache folder always holds the default demo")
    from permaplug.core.atomic import check_writable

    check_writable(target.parent)  # the build writes a sibling folder, then renames it
    t0 = time.perf_counter()
    catalog = build_demo(target, seed=seed, resolution=resolution, n_cells=n_cells,
                         progress=not quiet, steps_per_month=steps_per_month, version=version)
    click.echo(f"Built demo data v{version} (data: demo emulator) in {time.perf_counter() - t0:.1f} s: "
               f"{catalog}")


@demo.command(name="path")
@click.option("--version", "version", default=None,
              help="Demo data version (default: the current one).")
def path(version: str | None) -> None:
    """Print the default demo catalog's path (without building it)."""
    from permaplug.demo import DEMO_VERSION, demo_dir

    click.echo(str(demo_dir(version or DEMO_VERSION) / "catalog.yaml"))


def _score_lines(title: str, scores_cal, scores_val) -> list[str]:
    lines = [f"{title}", ("| depth | bias 1989-2012 | RMSE 1989-2012 | bias 2013-2021 | "
             "RMSE 2013-2021 | max abs 2013-2021 |"), "|---|---|---|---|---|---|"]
    val = {s.depth_cm: s for s in scores_val}
    for s in scores_cal:
        v = val.get(s.depth_cm)
        tail = f"{v.bias:+.2f} | {v.rmse:.2f} | {v.max_abs:.2f}" if v else "- | - | -"
        lines.append(f"| {s.depth_cm} cm | {s.bias:+.2f} | {s.rmse:.2f} | {tail} |")
    return lines


def _toolik_scores(obs, params_list):
    from permaplug.demo import calibrate as C

    sim = C.run_toolik(params_list)
    return [(C.climatology_scores(sim[j], obs, C.CALIBRATION_YEARS),
             C.climatology_scores(sim[j], obs, C.VALIDATION_YEARS)) for j in range(sim.shape[1])]


_OBS_OPTION = click.option(
    "--obs", "obs_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None, help="Toolik EDC soil-temperature export (3-hour data, .csv or .csv.gz); "
                       "default: the record bundled with permaplug.")


@demo.command(name="score")
@_OBS_OPTION
@click.option("--version", "version", default=None,
              help="Demo version whose emulator parameters to use (default: the current one).")
def score(obs_path: Path, version: str | None) -> None:
    """Score the emulator at Toolik against the observed soil temperatures."""
    from permaplug.demo import calibrate as C
    from permaplug.demo.build import DEMO_VERSION
    from permaplug.demo.params import params_for

    version = version or DEMO_VERSION
    obs = C.read_edc_monthly(obs_path or C.bundled_record())
    ((cal, val),) = _toolik_scores(obs, [params_for(version)])
    click.echo("\n".join(_score_lines(
        f"Emulator (demo v{version} parameters) at Toolik minus observed, monthly climatology, K "
        f"(data: demo emulator on real ERA5 forcing vs real observations (Toolik EDC))",
        cal, val)))


@demo.command(name="calibrate")
@_OBS_OPTION
@click.option("--maxiter", type=int, default=25, show_default=True,
              help="Differential-evolution generations.")
@click.option("--popsize", type=int, default=8, show_default=True,
              help="Population size per parameter (one emulator column each).")
@click.option("--seed", type=int, default=0, show_default=True, help="Optimiser seed.")
@click.option("--from-version", "from_version", default="1", show_default=True,
              help="Demo version whose parameters are the starting point.")
def calibrate_cmd(obs_path: Path, maxiter: int, popsize: int, seed: int,
                  from_version: str) -> None:
    """Calibrate the emulator's uncertain parameters at Toolik (1989-2012; 2013-2021 validates)."""
    from permaplug.demo import calibrate as C
    from permaplug.demo.params import RANGES, params_for

    if maxiter < 1 or popsize < 2:
        raise ConfigError("--maxiter must be >= 1 and --popsize >= 2")
    obs = C.read_edc_monthly(obs_path or C.bundled_record())
    t0 = time.perf_counter()
    cal = C.calibrate(obs, start=params_for(from_version), maxiter=maxiter, popsize=popsize,
                      seed=seed)
    lines = [(f"Calibrated in {time.perf_counter() - t0:.0f} s ({cal.columns} emulator columns; "
             f"{cal.message}); objective (weighted mean squared climatology RMSE, K2) "
             f"{cal.objective_before:.2f} -> {cal.objective_after:.2f}"), "",
             "| parameter | before | after | published range |", "|---|---|---|---|"]
    for k in C.CALIBRATED:
        lo, hi, _ = RANGES[k]
        lines.append(f"| {k} | {getattr(cal.before, k):.4g} | {getattr(cal.after, k):.4g} | "
                     f"{lo:g}-{hi:g} |")
    before, after = _toolik_scores(obs, [cal.before, cal.after])
    lines += ["", *_score_lines("Before (emulator minus observed, K):", *before), "",
              *_score_lines("After (emulator minus observed, K):", *after), "",
              "data: demo emulator on real ERA5 forcing vs real observations (Toolik EDC)"]
    click.echo("\n".join(lines))
