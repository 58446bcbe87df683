"""permaplug's command line: the front door to every capability.

Each command lives in :mod:`permaplug.commands`; this module assembles the group and turns the
library's domain errors into one-line ``click`` errors (exit 1; usage mistakes exit 2).
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

import click

from permaplug.commands import (
    catalog,
    correct,
    data,
    demo,
    explain,
    fetch,
    plugins,
    project,
    report,
    run,
)
from permaplug.core.catalog import set_catalog_resolver
from permaplug.core.errors import PermaplugError
from permaplug.projection.rerun import set_emulator_rerun

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class PermaplugGroup(click.Group):
    """A click group whose commands report :class:`PermaplugError` as one line, exit 1."""

    def invoke(self, ctx: click.Context):
        from permaplug.core.progress import scope

        with warnings.catch_warnings(), scope():
            warnings.showwarning = warning_printer()
            try:
                return super().invoke(ctx)
            except PermaplugError as exc:
                raise click.ClickException(str(exc).splitlines()[0] if str(exc)
                                           else type(exc).__name__) from None
            except OSError as exc:
                if not getattr(exc, "filename", None):
                    raise
                # the environment refused a file (permissions, disk full): one line, no traceback
                raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from None
            except KeyboardInterrupt:
                click.echo("Interrupted.", err=True)
                sys.exit(130)


def warning_printer():
    """A ``warnings.showwarning`` printing each warning as one ``Warning: ...`` line on stderr
    (no source line), each distinct text once per command (a dependency repeating itself for
    every file it reads is shown once)."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message).splitlines()[0] if str(message) else category.__name__
        if text in shown:
            return
        shown.add(text)
        click.echo(f"Warning: {text}", err=True)

    return show


@click.group(cls=PermaplugGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(None, "--version", package_name="permaplug", prog_name="permaplug")
def cli() -> None:
    """permaplug: model Alaska's active-layer soil temperatures with deep learning.

    Runs on the bundled demo data (a physics emulator driven by real ERA5 and IPSL-CM5A-MR
    series) unless --catalog points at real data.
    """


for _cmd in (plugins.plugins, catalog.catalog, fetch.fetch, demo.demo, data.data,
             correct.correct, run.run, project.project, explain.explain, report.report):
    cli.add_command(_cmd)


def resolve_catalog(name: str | None) -> Path | None:
    """The command line's catalogs beyond files and bundled ones: no ``--catalog`` means the
    current demo catalog, ``demo-v<N>`` that demo version's (each built into the user cache on
    first use; an already built one is found without importing the emulator)."""
    from permaplug.demo.cache import DEMO_VERSION, built_demo_catalog, demo_catalog_names

    if name is None:
        version: str | None = DEMO_VERSION
    else:
        version = demo_catalog_names().get(name) if name.startswith("demo-v") else None
    if version is None:
        return None
    found = built_demo_catalog(version)
    if found is not None:
        return found
    from permaplug.demo.build import ensure_demo_catalog

    return ensure_demo_catalog(version=version)


def _catalog_names() -> list[str]:
    from permaplug.demo.cache import demo_catalog_names

    return list(demo_catalog_names())


def _emulator_rerun(*args, **kwargs):
    """The demo emulator's sensitivity rerun (:func:`permaplug.demo.sensitivity.rerun`)."""
    from permaplug.demo.sensitivity import rerun

    return rerun(*args, **kwargs)


set_catalog_resolver(resolve_catalog, _catalog_names)
set_emulator_rerun(_emulator_rerun)


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` as ``sys.exit`` would, skipping only the interpreter's
    teardown: the ``atexit`` handlers run (child processes stopped, logs flushed), the output
    streams are flushed, then the process ends without freeing every module's objects one by
    one (1-2 s after a run that loaded torch, xarray and matplotlib: measured in
    benchmarks/RESULTS.md, "Main job"). Every file the command writes is closed by then."""
    import atexit
    import os

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def main() -> None:  # pragma: no cover - console entry (tested in a subprocess)
    """The ``permaplug`` console command: :data:`cli`, then :func:`exit_now`
    (``PERMAPLUG_FAST_EXIT=0``: the interpreter's usual exit)."""
    import os

    try:
        cli(prog_name="permaplug")
    except SystemExit as exc:
        if os.environ.get("PERMAPLUG_FAST_EXIT", "1") == "0":
            raise
        exit_now(exc.code)
