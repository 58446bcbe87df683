"""Exit codes and noise (issue 15, items 7 and 8): usage mistakes exit 2, data and option
errors exit 1 with one ``Error:`` line on stderr; every long command has ``--quiet``; progress
bars only on a terminal; a warning repeated by a dependency is shown once."""
from __future__ import annotations

import io
import warnings

import pytest
from click.testing import CliRunner

from permaplug.cli import cli, warning_printer
from permaplug.core import progress


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("args", [
    ["run", "--epochs", "abc"],                          # not an integer
    ["run", "--spatial", "hexagons"],                    # not a choice
    ["correct", "--no-such-option"],                     # unknown option
    ["correct", "--min-calibration-share", "2"],         # out of range
    ["project"],                                         # missing argument
    ["explain", "/no/such/run/folder"],                  # a path that must exist
    ["data", "build"],                                   # missing required --out
    ["fetch", "no-such-source"],                         # unknown sub-command
    ["no-such-command"],
])
def test_usage_mistakes_exit_2(args):
    res = invoke(*args)
    assert res.exit_code == 2, (args, res.output)
    assert "Traceback" not in res.output
    assert "Usage:" in res.stderr and "Error:" in res.stderr


@pytest.mark.parametrize("args, needle", [
    (["data", "build", "--catalog", "/no/such/catalog.yaml", "--out", "t.nc"],
     "catalog file not found"),
    (["correct", "--catalog", "real-tables", "--source", "cmip5-ipsl-box",
      "--continuation", "rcp99", "--out", "{tmp}/c"], "continuation scenario 'rcp99'"),
    (["correct", "--catalog", "real-tables", "--source", "cmip5-ipsl-box",
      "--scenario-pair", "rcp26", "--out", "{tmp}/c"], "two different scenarios"),
    (["run", "--model", "gruu", "--catalog", "real-tables"], "Unknown model: 'gruu'"),
    (["run", "--scenario-pair", "rcp26,rcp85", "--scenarios", "rcp45", "--catalog",
      "real-tables", "--out", "{tmp}/r"], "both must be among --scenarios"),
])
def test_data_and_option_errors_exit_1_with_one_line(tmp_path, args, needle):
    res = invoke(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [x for x in res.stderr.splitlines() if x.startswith("Error:")]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert not res.stdout.strip() or "Error:" not in res.stdout


@pytest.mark.parametrize("cmd", [["run"], ["correct"], ["data", "build"], ["project"],
                                 ["explain"], ["demo", "build"], ["fetch", "cmip"],
                                 ["fetch", "era5land"]])
def test_every_long_command_has_quiet(cmd):
    res = invoke(*cmd, "--help")
    assert res.exit_code == 0, res.output
    assert "--quiet" in res.output


def test_bars_are_off_under_quiet_and_auto_otherwise():
    assert progress.disabled() is None          # tqdm decides: a terminal only
    assert progress.disabled(False) is True
    with progress.scope():
        progress.set_quiet()
        assert progress.disabled() is True      # reaches bars inside plugins too
    assert progress.disabled() is None          # the command's scope ended


def test_no_bar_is_written_when_stderr_is_not_a_terminal():
    from tqdm import tqdm

    stream = io.StringIO()                      # like a log file: not a terminal
    for _ in tqdm(range(3), file=stream, disable=progress.disabled()):
        pass
    assert stream.getvalue() == ""


def test_every_progress_bar_in_the_package_asks_core_progress():
    """A bar built with ``disable=not progress`` would be written into logs and pipes: every
    ``tqdm(...)`` call in permaplug must take ``disable=bars.disabled(...)``."""
    import ast
    from pathlib import Path

    import permaplug

    offenders = []
    for path in Path(permaplug.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "tqdm":
                disable = next((k.value for k in node.keywords if k.arg == "disable"), None)
                if not (isinstance(disable, ast.Call)
                        and getattr(disable.func, "attr", "") == "disabled"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"progress bars not routed through core.progress: {offenders}"


def test_a_repeated_warning_is_shown_once(capsys):
    show = warning_printer()
    for _ in range(36):  # the OpenLandMap case: one dependency warning per file read
        show(PendingDeprecationWarning("Use `@` matmul instead of `*`"),
             PendingDeprecationWarning, "rioxarray.py", 110)
    show(UserWarning("another"), UserWarning, "x.py", 1)
    err = capsys.readouterr().err.splitlines()
    assert err == ["Warning: Use `@` matmul instead of `*`", "Warning: another"]


def test_data_build_shows_each_warning_once_and_no_dependency_deprecation(tiny_catalog,
                                                                         monkeypatch):
    from permaplug.data import assemble

    real = assemble.assemble_table

    def noisy(*a, **k):
        for _ in range(5):
            warnings.warn("Use `@` matmul instead of `*`", PendingDeprecationWarning)
            warnings.warn("static entry 'x' has a gap", UserWarning)
        return real(*a, **k)

    monkeypatch.setattr(assemble, "assemble_table", noisy)
    cat = tiny_catalog()
    res = invoke("data", "build", "--catalog", cat, "--static", "", "--out",
                 cat.parent / "t.nc")
    assert res.exit_code == 0, res.output
    lines = [x for x in res.stderr.splitlines() if x.startswith("Warning:")]
    assert lines.count("Warning: static entry 'x' has a gap") == 1
    assert not [x for x in lines if "matmul" in x]


@pytest.mark.parametrize("fast", ["1", "0"])
def test_the_console_command_exits_with_its_code_and_all_of_its_output(fast, tmp_path):
    """``permaplug`` (``permaplug.cli:main``) skips the interpreter's teardown at the end
    (``exit_now``); its exit codes and output are those of the usual exit."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PERMAPLUG_FAST_EXIT": fast, "PERMAPLUG_CACHE_DIR": str(tmp_path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "permaplug", *args], capture_output=True,
                              text=True, env=env, timeout=300, check=False)

    ok = run("plugins", "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)  # the whole document arrived
    assert {"shap", "tcn", "qm"} <= {p["name"] for p in doc["plugins"]}
    usage = run("run", "--epochs", "abc")
    assert usage.returncode == 2 and "Invalid value for '--epochs'" in usage.stderr
    error = run("correct", "--catalog", str(tmp_path / "missing.yaml"))
    assert error.returncode == 1 and error.stderr.count("Error:") == 1, error.stderr


def test_exit_now_runs_the_atexit_handlers_and_flushes(tmp_path):
    import subprocess
    import sys

    code = ("import atexit, sys\n"
            "from permaplug.cli import exit_now\n"
            "atexit.register(lambda: print('handler ran', flush=True))\n"
            "sys.stdout.write('buffered, not flushed')\n"
            "exit_now('a message')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 1
    assert res.stdout == "handler ran\nbuffered, not flushed" or res.stdout == (
        "buffered, not flushedhandler ran\n")
    assert res.stderr.strip() == "a message"
