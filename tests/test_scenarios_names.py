"""Scenario names are data (issue 15, item 1): no RCP/SSP name in package code; the continuation
scenario and the pair for differences come from options, catalog metadata or the data."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from permaplug.core import scenarios as S
from permaplug.core.errors import CatalogError, ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "permaplug"
NAME = re.compile(r"(rcp|ssp)\d{2,3}", re.IGNORECASE)


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """Ids of the docstrings: string statements in a module, class or function body."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in node.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    out.add(id(stmt.value))
    return out


def scenario_names_in_code(path: Path) -> list[str]:
    """Scenario names in the code of ``path``: string literals (not docstrings) and names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        if text and NAME.search(text):
            found.append(f"{path}:{node.lineno}: {text[:60]!r}")
    return found


def test_no_scenario_name_written_in_package_code():
    hits = [h for p in sorted(PACKAGE.rglob("*.py")) for h in scenario_names_in_code(p)]
    assert not hits, "scenario names belong in catalogs and docs:\n" + "\n".join(hits)


def test_the_grep_finds_a_name_in_code(tmp_path):
    """The check itself can fail: a literal in code is found, the same text in a docstring is not."""
    f = tmp_path / "probe.py"
    f.write_text('"""Mentions ssp585 in a docstring."""\nCONT = "rcp85"\nrcp26_x = 1\n',
                 encoding="utf-8")
    hits = scenario_names_in_code(f)
    assert len(hits) == 2 and "'rcp85'" in hits[0] and "'rcp26_x'" in hits[1]


@pytest.mark.parametrize("name, label", [("rcp26", 2.6), ("rcp85", 8.5), ("ssp126", 2.6),
                                          ("ssp585", 8.5), ("ssp119", 1.9),
                                          ("ssp534-over", 3.4), ("warm", None)])
def test_forcing_label(name, label):
    assert S.forcing_label(name) == label


def test_order_and_default_roles():
    assert S.ordered(["ssp585", "ssp126", "ssp370", "ssp245"]) == \
        ["ssp126", "ssp245", "ssp370", "ssp585"]
    assert S.ordered(["b", "rcp45", "a", "rcp26"]) == ["rcp26", "rcp45", "a", "b"]
    roles = S.resolve(["ssp585", "ssp126", "ssp245"])
    assert roles.continuation == "ssp585" and roles.pair == ("ssp126", "ssp585")
    assert roles.difference_key() == "ssp585_minus_ssp126_stl1_degC"
    single = S.resolve(["ssp245"])
    assert single.continuation == "ssp245" and single.pair is None
    assert single.difference_key() is None


def test_options_win_over_metadata_and_metadata_over_default():
    names = ["ssp126", "ssp245", "ssp585"]
    attrs = S.metadata_attrs({"continuation": "ssp245", "scenario_pair": ["ssp245", "ssp585"]})
    assert attrs == {S.CONTINUATION_ATTR: "ssp245", S.PAIR_ATTR: "ssp245,ssp585"}
    meta = S.resolve(names, attrs=attrs)
    assert (meta.continuation, meta.pair) == ("ssp245", ("ssp245", "ssp585"))
    opt = S.resolve(names, "ssp126", "ssp126,ssp245", attrs)
    assert (opt.continuation, opt.pair) == ("ssp126", ("ssp126", "ssp245"))


def test_unknown_names_are_one_clear_error():
    with pytest.raises(ConfigError, match=r"continuation scenario 'rcp85' \(--continuation\) "
                                          r"not in the scenario data \(have ssp126, ssp585\)"):
        S.resolve(["ssp585", "ssp126"], "rcp85")
    with pytest.raises(ConfigError, match="metadata.continuation"):
        S.resolve(["ssp585"], attrs={S.CONTINUATION_ATTR: "ssp245"})
    with pytest.raises(ConfigError, match="scenario pair ssp126,rcp85 .*rcp85 not in"):
        S.resolve(["ssp585", "ssp126"], pair="ssp126,rcp85")
    with pytest.raises(ConfigError, match="two different scenarios"):
        S.parse_pair("ssp126")


def test_catalog_metadata_is_checked_and_carried(tmp_path):
    from permaplug.core.catalog import load_catalog

    (tmp_path / "t").mkdir()
    text = """version: 2
entries:
  cmip:
    kwargs: {plugin: cmip, options: {paths: "{CATALOG_DIR}/t"}}
    metadata: {role: scenario, continuation: ssp245, scenario_pair: %s}
"""
    (tmp_path / "bad.yaml").write_text(text % "[ssp126]", encoding="utf-8")
    with pytest.raises(CatalogError, match="entry 'cmip': metadata.scenario_pair"):
        load_catalog(tmp_path / "bad.yaml")
    (tmp_path / "ok.yaml").write_text(text % "[ssp126, ssp585]", encoding="utf-8")
    cat = load_catalog(tmp_path / "ok.yaml")
    assert cat.entry("cmip").metadata["continuation"] == "ssp245"
