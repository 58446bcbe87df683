"""``permaplug demo``: build the bundled demo data (physics emulator on real forcing)."""
from __future__ import annotations

import time
from pathlib import Path

import click

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
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(out: Path | None, seed: int, resolution: float, n_cells: int | None,
          steps_per_month: int, force: bool, quiet: bool) -> None:
    """Build the demo data and its catalog."""
    from permaplug.demo import build_demo, demo_dir

    target = out or demo_dir()
    if (target / "catalog.yaml").exists() and not force:
        click.echo(f"Demo data already built: {target / 'catalog.yaml'} (use --force to rebuild)")
        return
    if out is None and (seed != 0 or resolution != 0.5 or n_cells is not None
                        or steps_per_month != 4):
        raise ConfigError("--seed, --resolution, --n-cells and --steps-per-month need --out: "
                          "the default cache folder always holds the default demo")
    t0 = time.perf_counter()
    catalog = build_demo(target, seed=seed, resolution=resolution, n_cells=n_cells,
                         progress=not quiet, steps_per_month=steps_per_month)
    click.echo(f"Built demo data (data: demo emulator) in {time.perf_counter() - t0:.1f} s: "
               f"{catalog}")


@demo.command(name="path")
def path() -> None:
    """Print the default demo catalog's path (without building it)."""
    from permaplug.demo import demo_dir

    click.echo(str(demo_dir() / "catalog.yaml"))
