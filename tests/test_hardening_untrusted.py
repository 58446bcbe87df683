"""Untrusted files (issue 9): checkpoints load with ``weights_only=True``, no pickle on the data
path, catalogs are safe YAML naming only registered plugins inside their own folder, and
credentials never reach the output.
"""
from __future__ import annotations

import ast
import os
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_CATALOG, era5_dataset

import permaplug
from permaplug.cli import cli

PACKAGE = Path(permaplug.__file__).parent


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error(res, *needles: str) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


class Payload:
    """Unpickling this object would create the folder ``path`` (a harmless stand-in for code
    execution)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path,))


# --- no pickle on the data path (static checks of the package) --------------------------------
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "jsonpickle",
                     "shelve", "marshal"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_no_pickle_module_is_imported_by_the_package():
    bad = []
    for py in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(py.read_text(), str(py))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            bad += [f"{py.relative_to(PACKAGE)}:{node.lineno} imports {n}" for n in names
                    if n in FORBIDDEN_MODULES]
    assert not bad, "\n".join(bad)


def test_every_loader_refuses_pickle():
    """torch.load always with weights_only=True; no allow_pickle, read_pickle, unsafe YAML."""
    bad, torch_loads = [], 0
    for py in sorted(PACKAGE.rglob("*.py")):
        rel = py.relative_to(PACKAGE)
        for call, name in _calls(ast.parse(py.read_text(), str(py))):
            kw = {k.arg: k.value for k in call.keywords}
            if name == "torch.load":
                torch_loads += 1
                w = kw.get("weights_only")
                if not (isinstance(w, ast.Constant) and w.value is True):
                    bad.append(f"{rel}:{call.lineno} torch.load without weights_only=True")
            elif name.endswith(("np.load", "numpy.load")):
                a = kw.get("allow_pickle")
                if a is not None and not (isinstance(a, ast.Constant) and a.value is False):
                    bad.append(f"{rel}:{call.lineno} np.load(allow_pickle=...)")
            elif name.endswith(("read_pickle", "to_pickle")):
                bad.append(f"{rel}:{call.lineno} {name}")
            elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
                bad.append(f"{rel}:{call.lineno} {name} (use yaml.safe_load)")
            elif name in ("eval", "exec"):
                bad.append(f"{rel}:{call.lineno} {name}")
    assert not bad, "\n".join(bad)
    assert torch_loads >= 2  # checkpoints and the per-epoch training state are checked


def test_malicious_checkpoint_is_refused_through_the_cli(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    flag = tmp_path / "code-was-executed"
    state = torch.load(run / "checkpoints/gru/model.pt", weights_only=True)
    state["evil"] = Payload(flag)
    torch.save(state, run / "checkpoints/gru/model.pt")
    res = invoke("explain", run, "--n-background", "2", "--n-explained", "1", "--no-progress")
    one_error(res, "model.pt")
    assert not flag.exists()


def test_malicious_training_state_is_refused_on_resume(tiny_run, tmp_path):
    """``--resume`` reads ``state.pt`` with weights_only=True as well."""
    from permaplug.training.loop import STATE_FILE

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "COMPLETE").unlink()
    (run / "checkpoints/gru/model.pt").unlink()  # the GRU had not finished
    flag = tmp_path / "code-was-executed"
    torch.save({"epoch": 0, "model": Payload(flag)}, run / "checkpoints/gru" / STATE_FILE)
    catalog = Path(__import__("yaml").safe_load((run / "config.yaml").read_text())["catalog"])
    res = invoke("run", "--out", run, "--resume", "--catalog", catalog, "--quiet",
                 "--no-project", "--no-explain", "--no-report")
    one_error(res, "state.pt")
    assert not flag.exists()


# --- safe YAML ----------------------------------------------------------------------------
def test_catalog_yaml_cannot_run_code(tmp_path):
    flag = tmp_path / "code-was-executed"
    cat = tmp_path / "catalog.yaml"
    cat.write_text(f"version: 2\nmetadata: !!python/object/apply:os.makedirs ['{flag}']\n"
                   "entries: {}\n")
    one_error(invoke("catalog", "list", "--catalog", cat), str(cat), "invalid YAML")
    assert not flag.exists()


def test_run_config_yaml_cannot_run_code(tmp_path):
    flag = tmp_path / "code-was-executed"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"epochs: !!python/object/apply:os.makedirs ['{flag}']\n")
    one_error(invoke("run", "--config", cfg, "--out", tmp_path / "run", "--quiet"),
              "--config", str(cfg))
    assert not flag.exists() and not (tmp_path / "run").exists()


# --- catalogs may only name registered plugins -----------------------------------------------
@pytest.mark.parametrize("entry, needle", [
    ("reader: os:system\n    kwargs: {plugin: era5land}", "reader 'os:system' is not allowed"),
    ("cls: builtins:eval\n    kwargs: {plugin: era5land}", "cls 'builtins:eval' is not allowed"),
    ("kwargs: {plugin: not-a-plugin}", "Unknown source: 'not-a-plugin'"),
    ("kwargs: {plugin: era5land, options: {paths: '{os.environ}'}}", "template {os.environ}"),
])
def test_catalog_entries_are_restricted(tmp_path, entry, needle):
    cat = tmp_path / "catalog.yaml"
    cat.write_text(f"version: 2\nentries:\n  x:\n    {entry}\n")
    one_error(invoke("catalog", "list", "--catalog", cat), str(cat), needle)


def test_catalog_sections_that_could_import_classes_are_refused(tmp_path):
    cat = tmp_path / "catalog.yaml"
    cat.write_text(TINY_CATALOG + "user_parameters: {p: {cls: os:system}}\n")
    one_error(invoke("catalog", "list", "--catalog", cat), "'user_parameters' is not allowed")


# --- paths cannot escape the catalog's folder ---------------------------------------------
@pytest.fixture()
def outside(tmp_path) -> Path:
    """Real ERA5-Land data in a folder next to (not inside) the catalog's folder."""
    data = tmp_path / "outside"
    data.mkdir()
    era5_dataset("2001-01", "2001-12").to_netcdf(data / "era5.nc")
    (tmp_path / "cat").mkdir()
    return data


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_catalog_paths_cannot_escape_its_folder(outside, tmp_path, how):
    folder = tmp_path / "cat"
    if how == "dotdot":
        paths = "{CATALOG_DIR}/../outside/era5.nc"
    elif how == "absolute":
        paths = str(outside / "era5.nc")
    else:
        (folder / "data").symlink_to(outside, target_is_directory=True)
        paths = "{CATALOG_DIR}/data/era5.nc"
    cat = folder / "catalog.yaml"
    cat.write_text(TINY_CATALOG.replace("{CATALOG_DIR}/era5/*.nc", paths))
    one_error(invoke("catalog", "list", "--catalog", cat), str(cat), "leaves the catalog folder",
              "allow_absolute_paths")
    out = tmp_path / "t.nc"
    one_error(invoke("data", "build", "--catalog", cat, "--static", "", "--out", out),
              "leaves the catalog folder")
    assert not out.exists()
    # allowed explicitly: the same catalog reads the data
    cat.write_text(cat.read_text().replace("metadata: {description: tiny ERA5-Land test catalog}",
                                           "metadata: {allow_absolute_paths: true}"))
    res = invoke("data", "build", "--catalog", cat, "--static", "", "--out", out)
    assert res.exit_code == 0, res.output
    assert out.exists()


# --- credentials are never logged -----------------------------------------------------------
SECRET = "12345:abcdef0123-secret-key"


def test_cds_credentials_never_reach_the_output(tmp_path, monkeypatch, caplog):
    """A provider error that quotes the key: the CLI shows one line without it."""
    fake = types.ModuleType("cdsapi")

    class Client:
        def __init__(self, **kwargs):
            self.key = os.environ["CDSAPI_KEY"]

        def retrieve(self, name, request, target):
            Path(target).write_bytes(b"partial download")
            raise RuntimeError(f"401 Client Error: not authorised for key {self.key} "
                               f"(uid {self.key.split(':')[0]})")

    fake.Client = Client
    monkeypatch.setitem(sys.modules, "cdsapi", fake)
    monkeypatch.setenv("CDSAPI_KEY", SECRET)
    monkeypatch.setenv("CDSAPI_URL", "https://cds.example/api")
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "download"
    with caplog.at_level("DEBUG"):
        res = invoke("fetch", "era5land", "--start", "2001", "--end", "2001", "--out", out)
    line = one_error(res, "CDS request for 2001 failed", "401 Client Error", "***")
    assert SECRET not in res.output and "abcdef0123" not in line and "12345" not in line
    assert SECRET not in caplog.text
    assert list(out.iterdir()) == []  # the partial download was not kept


def test_missing_cds_credentials_say_how_to_authenticate(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cdsapi", types.ModuleType("cdsapi"))
    monkeypatch.delenv("CDSAPI_KEY", raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "no-rc"))
    one_error(invoke("fetch", "era5land", "--out", tmp_path / "d"), "no CDS credentials",
              "~/.cdsapirc")


def test_earth_engine_errors_are_one_line_without_credentials(tmp_path, monkeypatch):
    from permaplug.core.errors import FetchError
    from permaplug.plugins.sources.era5land_fetch import fetch_era5land_gee

    monkeypatch.setenv("CDSAPI_KEY", SECRET)

    class Failing:
        def band_means(self, request):
            raise RuntimeError(f"Quota exceeded for project x (token {SECRET})\nmore detail")

    with pytest.raises(FetchError) as info:
        fetch_era5land_gee(tmp_path / "ee", 2001, 2001, bands=["skin_temperature"],
                           client=Failing(), progress=False)
    msg = str(info.value)
    assert msg.startswith("Earth Engine request for 2001 failed: Quota exceeded")
    assert "\n" not in msg and SECRET not in msg and "abcdef0123" not in msg
    assert list((tmp_path / "ee").iterdir()) == []
