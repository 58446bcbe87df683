"""The package's layers (import-linter contracts in pyproject.toml) hold, cover every part of
the package, and catch an import that runs back up."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import permaplug

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(permaplug.__file__).parent
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _lint(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT, "--no-cache", str(ROOT / "pyproject.toml")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_import_contracts_are_kept(tmp_path):
    res = _lint(PACKAGE.parent, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Contracts: 3 kept, 0 broken." in res.stdout


def test_every_part_of_the_package_is_in_a_layer():
    layers = {name.strip() for layer in _contracts()["layers"]["layers"]
              for name in layer.split("|")}
    parts = {p.stem for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert parts == layers, f"not in a layer: {parts - layers}; no such part: {layers - parts}"
    folders = {f"permaplug.plugins.{p.name}" for p in (PACKAGE / "plugins").iterdir()
               if (p / "__init__.py").exists()}
    assert set(_contracts()["plugin-kinds"]["modules"]) == folders


@pytest.mark.parametrize(("module", "line", "broken"), [
    # core -> demo runs up; through demo -> plugins.sources it also ties models to sources
    ("core/errors.py", "from permaplug.demo import DEMO_VERSION",
     {"layers", "acyclic", "plugin-kinds"}),
    ("plugins/models/gru.py", "from permaplug.plugins.sources import era5land",
     {"plugin-kinds"}),
    ("data/region.py", "from permaplug.data import bands", {"acyclic"}),
])
def test_an_import_back_up_or_a_cycle_breaks_a_contract(tmp_path, module, line, broken):
    copy = tmp_path / "src" / "permaplug"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "resources"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _late():\n    {line}\n",
                      encoding="utf-8")
    res = _lint(copy.parent, tmp_path)
    assert res.returncode == 1, res.stdout
    for contract_id, contract in _contracts().items():  # only the contracts concerned break
        state = "BROKEN" if contract_id in broken else "KEPT"
        assert f"{contract['name']} {state}" in res.stdout, (contract_id, res.stdout)
