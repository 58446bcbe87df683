"""``permaplug report``: one self-contained HTML file for one or more run folders."""
from __future__ import annotations

from pathlib import Path

import click

from permaplug.commands.options import check_run_folder


@click.command(name="report")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write (default: report.html in the first run folder).")
def report(run_dirs: tuple[Path, ...], out: Path | None) -> None:
    """Write a self-contained HTML report of run folders."""
    for run_dir in run_dirs:
        check_run_folder(run_dir)
    from permaplug.core.atomic import check_writable
    from permaplug.report.html import write_report

    out = out or Path(run_dirs[0]) / "report.html"
    check_writable(out.parent)
    path = write_report(list(run_dirs), out)
    click.echo(f"report: {path}")
