"""The command line, not core, chooses the default (demo) catalog and knows demo versions by
name; the library alone needs a catalog."""
from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from permaplug.cli import cli, resolve_catalog
from permaplug.core import catalog as catalog_mod
from permaplug.core.catalog import bundled_catalogs, load_catalog
from permaplug.core.errors import CatalogError
from permaplug.demo.cache import DEMO_VERSION


def _fake_demo(cache, version: str):
    """A built demo of ``version`` in ``cache`` (a copy of a bundled catalog stands in)."""
    folder = cache / f"demo-v{version}"
    shutil.copytree(bundled_catalogs()["real-tables"].parent, folder)
    shutil.copy(bundled_catalogs()["real-tables"], folder / "catalog.yaml")
    return folder / "catalog.yaml"


def test_library_without_a_resolver_needs_a_catalog(monkeypatch):
    monkeypatch.setattr(catalog_mod, "_resolver", None)
    monkeypatch.setattr(catalog_mod, "_resolver_names", None)
    with pytest.raises(CatalogError, match="no catalog given: pass the path of a catalog file"):
        load_catalog(None)
    with pytest.raises(CatalogError, match=r"demo-v1: no such catalog file, and not a bundled "
                                           r"catalog \([^)]*real-tables[^)]*\)$"):
        load_catalog("demo-v1")


def test_cli_resolves_the_built_demo_catalogs(tmp_path, monkeypatch):
    monkeypatch.setenv("PERMAPLUG_CACHE_DIR", str(tmp_path))
    built = _fake_demo(tmp_path, DEMO_VERSION)  # the current (default) demo version
    old = _fake_demo(tmp_path, "1")  # an earlier version, reachable by name
    assert DEMO_VERSION != "1"
    assert resolve_catalog(None) == built and resolve_catalog(f"demo-v{DEMO_VERSION}") == built
    assert resolve_catalog("demo-v1") == old
    assert resolve_catalog("something-else") is None
    res = CliRunner().invoke(cli, ["catalog", "list"])  # no --catalog: the built demo
    assert res.exit_code == 0, res.output
    assert f"catalog: {built.resolve()}" in res.output
    res = CliRunner().invoke(cli, ["catalog", "list", "--catalog", "demo-v1"])
    assert res.exit_code == 0 and f"catalog: {old.resolve()}" in res.output
    res = CliRunner().invoke(cli, ["catalog", "list", "--catalog", "demo-v9"])
    assert res.exit_code == 1
    assert "demo-v9: no such catalog file, and not a bundled catalog (" in res.output
    assert "demo-v1" in res.output and "real-tables" in res.output
