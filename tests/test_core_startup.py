"""A fast command line: the package, the registry and the light commands import no torch,
xarray, xsdba or shap; plugin classes registered by import path load on first use. (The times
themselves are measured by benchmarks/bench_cli.py.)"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import permaplug
from permaplug.core import plugins as plugmod
from permaplug.core.errors import PluginError

HEAVY = ("torch", "xarray", "xsdba", "shap", "pandas", "intake", "dask")


def _imported_after(code: str) -> list[str]:
    """Heavy modules present in a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=False, env={"MPLBACKEND": "Agg", "PATH": ""})
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def _cli(*args: str) -> str:
    return ("import click\nfrom permaplug.cli import cli\n"
            f"try:\n    cli({list(args)!r}, standalone_mode=False)\n"
            "except (SystemExit, click.ClickException):\n    pass\n")


@pytest.mark.parametrize("code", [
    "import permaplug; permaplug.hookimpl; permaplug.Source; permaplug.__version__",
    _cli("--help"),
    _cli("--version"),
    _cli("plugins"),
    _cli("plugins", "--json"),
    _cli("catalog", "list", "--catalog", "real-tables"),
    _cli("catalog", "bundled"),
    _cli("fetch", "nosuch"),
    _cli("catalog", "list", "--catalog", "missing.yaml"),
    _cli("run", "--model", "nosuch", "--catalog", "real-tables"),
    _cli("correct", "--corrector", "nosuch", "--catalog", "real-tables"),
    _cli("correct", "--calibration", "2001", "--catalog", "real-tables"),
    _cli("correct", "--source", "nosuch", "--catalog", "real-tables"),
    _cli("run", "--source", "nosuch", "--catalog", "real-tables"),
    _cli("run", "--epochs", "0", "--catalog", "real-tables"),
])
def test_light_paths_import_nothing_heavy(code):
    assert _imported_after(code) == []


@pytest.mark.parametrize("command", [["project"], ["explain"], ["report"],
                                     ["project", "--corrector", "nosuch"]])
def test_run_folder_mistakes_import_nothing_heavy(tmp_path, command):
    code = _cli(*command[:1], str(tmp_path), *command[1:])
    assert _imported_after(code) == []


def test_contracts_import_their_libraries_on_first_access():
    assert _imported_after("import permaplug; permaplug.Model") == ["torch"]
    assert "xarray" in _imported_after("import permaplug; permaplug.Corrector")


def test_registry_lists_builtins_without_importing_them():
    code = ("from permaplug.core.plugins import get_registry\nimport sys\nreg = get_registry()\n"
            "assert sorted(reg.names('model'))[:2] == ['bilstm', 'climatology']\n"
            "assert reg.info('model', 'gru').class_path == "
            "'permaplug.plugins.models.gru.GRUModel'\n"
            "assert 'permaplug.plugins.models.gru' not in sys.modules\n")
    assert _imported_after(code) == []
    assert _imported_after(code + "reg.get('model', 'gru')") == ["torch"]


class LazyPlugin:
    """A third party registering by import path: one good class, one that cannot import, one
    whose class carries another name, and one malformed registration."""

    __name__ = "permaplug_lazy"

    @permaplug.hookimpl
    def register_models(self, register):
        register("permaplug.plugins.models.persistence:Persistence", name="lazy-persistence")
        register("permaplug_no_such_module:Net", name="ghost")

    @permaplug.hookimpl
    def register_correctors(self, register):
        register("permaplug.plugins.correctors.none:NoCorrection", name="nothing")

    @permaplug.hookimpl
    def register_explainers(self, register):
        register("not an import path", name="bad")


def test_lazy_registration_errors_name_the_plugin():
    reg = plugmod.build_registry(extra_plugins=[(LazyPlugin(), "permaplug-lazy")])
    assert {"lazy-persistence", "ghost"} <= set(reg.names("model"))
    assert reg.info("model", "ghost").class_path == "permaplug_no_such_module.Net"
    with pytest.raises(PluginError, match=r"permaplug-lazy: model 'ghost' "
                                          r"\(permaplug_no_such_module:Net\) could not be loaded: "
                                          r"ModuleNotFoundError"):
        reg.get("model", "ghost")
    with pytest.raises(PluginError, match="model registered as 'lazy-persistence' but "
                                          "permaplug.plugins.models.persistence.Persistence.name "
                                          "is 'persistence'"):
        reg.get("model", "lazy-persistence")
    with pytest.raises(PluginError, match="registered as 'nothing' but .*name is 'none'"):
        reg.get("corrector", "nothing")
    broken = [b.error for b in reg.broken if b.distribution == "permaplug-lazy"]
    assert broken == [("register_explainers raised TypeError: explainer 'not an import path': "
                       "register a class or an import path 'package.module:Class'")]
    assert reg.get("model", "gru").name == "gru"  # the built-ins are unaffected


def test_correctors_are_built_and_checked_without_importing_xsdba():
    code = ("from permaplug.core.errors import ConfigError\n"
            "from permaplug.core.plugins import get_corrector\n"
            "for name in ('qm', 'qdm', 'dqm'):\n"
            "    get_corrector(name)(seed=1)\n"
            "    try:\n"
            "        get_corrector(name)(nosuch=1)\n"
            "    except ConfigError:\n"
            "        pass\n"
            "    else:\n"
            "        raise SystemExit('no ConfigError')\n")
    assert "xsdba" not in _imported_after(code)
    probe = code + ("from permaplug.plugins.correctors.qm import QuantileMapping\n"
                    "import xsdba, xsdba.nbutils\n"
                    "assert QuantileMapping.adjustment is xsdba.EmpiricalQuantileMapping\n"
                    "assert xsdba.nbutils._wrapper_quantile1d._cache._cache_path\n")
    assert "xsdba" in _imported_after(probe)
