"""Interrupted runs (issue 9): SIGINT and SIGKILL during training, then ``--resume``, end with
exactly the metrics and predictions of an uninterrupted run with the same seed; the
``COMPLETE`` marker is written last and only by a finished run; outputs are atomic.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_CATALOG, era5_dataset

import permaplug
from permaplug.cli import cli
from permaplug.core.atomic import atomic_path, write_text_atomic
from permaplug.training import loop

EPOCHS = 4
ARGS = ["--model", "gru", "--hparam", "hidden_size=8", "--epochs", str(EPOCHS),
        "--train-years", "2001-2004", "--test-years", "2005-2006", "--seed", "3",
        "--no-project", "--no-explain", "--no-report", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume-data")
    (folder / "era5").mkdir()
    era5_dataset("2001-01", "2006-12", seed=1).to_netcdf(folder / "era5" / "era5.nc")
    (folder / "catalog.yaml").write_text(TINY_CATALOG, encoding="utf-8")
    return folder / "catalog.yaml"


@pytest.fixture(scope="module")
def reference(catalog, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    res = invoke("run", "--catalog", catalog, *ARGS, "--out", out)
    assert res.exit_code == 0, res.output
    return out


def comparable_metrics(run: Path) -> dict:
    """metrics.json without the wall-clock training times."""
    doc = json.loads((run / "metrics.json").read_text())
    for m in doc["models"].values():
        m.pop("train_seconds", None)
    return doc


def assert_same_run(run: Path, reference: Path) -> None:
    assert comparable_metrics(run) == comparable_metrics(reference)
    a = pd.read_parquet(run / "predictions.parquet")
    b = pd.read_parquet(reference / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    wa = torch.load(run / "checkpoints/gru/model.pt", weights_only=True)
    wb = torch.load(reference / "checkpoints/gru/model.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ha = json.loads((run / "checkpoints/gru/history.json").read_text())
    hb = json.loads((reference / "checkpoints/gru/history.json").read_text())
    assert ha["train"] == hb["train"] and len(ha["train"]) == EPOCHS


def test_complete_marker_is_written_last(reference):
    files = [p for p in reference.rglob("*") if p.is_file()]
    marker = reference / "COMPLETE"
    assert marker in files
    assert max(files, key=lambda p: p.stat().st_mtime_ns) == marker
    assert marker.read_text().splitlines()[1:] == ["train", "evaluate"]
    assert not list(reference.rglob(".*"))  # no temporary file left
    assert not (reference / "checkpoints/gru/state.pt").exists()


@pytest.fixture
def interruptible():
    """SIGINT raises KeyboardInterrupt, as in a terminal: a shell's background job (``cmd &``,
    e.g. a CI script started that way) starts with SIGINT ignored, and Python then installs no
    handler, so the signal would be lost."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_sigint_during_training_then_resume(catalog, reference, tmp_path, monkeypatch,
                                            interruptible):
    """A real SIGINT arrives after the second epoch's state is saved (in-process, fast)."""
    out = tmp_path / "run"
    saved: list[Path] = []
    real = loop.atomic_path

    def interrupting(target, *a, **kw):
        with real(target, *a, **kw) as tmp:
            yield tmp
        saved.append(Path(target))
        if len(saved) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    import contextlib

    monkeypatch.setattr(loop, "atomic_path", contextlib.contextmanager(interrupting))
    res = invoke("run", "--catalog", catalog, *ARGS, "--out", out)
    assert res.exit_code == 130, res.output
    assert "Interrupted." in res.output and "Traceback" not in res.output
    state = out / "checkpoints/gru/state.pt"
    assert saved == [state, state]
    assert int(torch.load(state, weights_only=True)["epoch"]) == 1
    assert not (out / "COMPLETE").exists() and not (out / "metrics.json").exists()
    assert not (out / "checkpoints/gru/model.pt").exists()
    assert not list(out.rglob(".*"))  # the interrupted write left no temporary file

    monkeypatch.undo()
    # what a SIGKILL during a write leaves behind: a temporary sibling, removed on resume
    stale = out / "checkpoints/gru/.state.pt.k1ll3d_x.pt"
    stale.write_bytes(b"half a tensor")
    res = invoke("run", "--catalog", catalog, *ARGS, "--out", out)
    assert res.exit_code == 1 and "use --resume" in res.output  # never overwritten silently
    res = invoke("run", "--catalog", catalog, *ARGS, "--out", out, "--resume")
    assert res.exit_code == 0, res.output
    assert "(resuming)" in res.output
    assert (out / "COMPLETE").exists()
    assert not stale.exists() and not list(out.rglob(".*"))
    assert_same_run(out, reference)


def test_only_atomic_temporaries_are_recognised(tmp_path):
    from permaplug.core.atomic import is_temporary, remove_stale_temporaries

    with pytest.raises(RuntimeError), atomic_path(tmp_path / "state.pt") as tmp:
        tmp.write_bytes(b"x")
        name = tmp.name
        raise RuntimeError
    assert is_temporary(name)  # the real naming of atomic_path
    keep = [tmp_path / ".gitignore", tmp_path / ".hidden.txt", tmp_path / "state.pt"]
    for p in keep:
        p.write_text("keep")
    (tmp_path / name).write_text("stale")
    assert remove_stale_temporaries(tmp_path) == [tmp_path / name]
    assert all(p.exists() for p in keep)


def test_resume_refuses_a_changed_option(catalog, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    args = [a if a != "3" else "4" for a in ARGS]  # --seed 4
    res = invoke("run", "--catalog", catalog, *args, "--out", out, "--resume")
    assert res.exit_code == 1 and "Error: --resume: seed 4 differs" in res.output
    assert "Traceback" not in res.output
    assert comparable_metrics(out) == comparable_metrics(reference)  # nothing rewritten


@pytest.mark.slow  # two subprocesses that import torch (about 40 s)
def test_sigkill_during_training_then_resume(catalog, reference, tmp_path):
    """SIGKILL a ``permaplug run`` subprocess once its first epoch is saved, then resume."""
    out = tmp_path / "run"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # many epochs so that the kill lands during training; resume uses the same options
    args = [a if a != str(EPOCHS) else "80" for a in ARGS]
    cmd = [sys.executable, "-m", "permaplug", "run", "--catalog", str(catalog), *args,
           "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = out / "checkpoints/gru/state.pt"
    deadline = time.monotonic() + 120
    try:
        while not state.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    epoch = int(torch.load(state, weights_only=True)["epoch"])
    assert 0 <= epoch < 79
    assert not (out / "COMPLETE").exists() and not (out / "metrics.json").exists()

    ref = tmp_path / "reference"
    res = invoke("run", "--catalog", catalog, *args, "--out", ref)
    assert res.exit_code == 0, res.output
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, check=False,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (out / "COMPLETE").exists()
    assert comparable_metrics(out) == comparable_metrics(ref)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"),
                                  pd.read_parquet(ref / "predictions.parquet"), check_exact=True)


# --- atomic writes ----------------------------------------------------------------------------
def test_atomic_path_leaves_the_target_untouched_on_failure(tmp_path):
    target = tmp_path / "table.nc"
    target.write_text("old")
    # a writer's RuntimeError that reports a failed write becomes one OSError naming the target
    with pytest.raises(OSError, match="table.nc"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.nc"]
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.nc"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_failed_table_write_leaves_nothing(tmp_path, monkeypatch):
    """``data build`` whose NetCDF writer dies half-way: no table, no temporary, exit 1."""
    import xarray as xr

    folder = tmp_path / "data"
    (folder / "era5").mkdir(parents=True)
    era5_dataset("2001-01", "2001-12").to_netcdf(folder / "era5" / "era5.nc")
    (folder / "catalog.yaml").write_text(TINY_CATALOG)
    real = xr.Dataset.to_netcdf

    def dies(self, path=None, *a, **kw):
        real(self, path, *a, **kw)
        Path(path).write_bytes(Path(path).read_bytes()[:100])
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", dies)
    out = tmp_path / "table.nc"
    res = invoke("data", "build", "--catalog", folder / "catalog.yaml", "--static", "",
                 "--out", out)
    # the message names the file asked for, not the temporary one
    assert res.exit_code == 1 and f"Error: {out}: No space left on device" in res.output
    assert "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


WRITERS = {"to_netcdf", "to_parquet", "savefig", "to_csv", "to_file", "to_raster",
           "write_table", "to_zarr"}
TEMP_NAMES = {"tmp", "buf", "dst"}
# functions that write the temporary path their caller got from atomic_path
ALLOWED = {("plugins/sources/cmip_fetch.py", "download"),  # ESGF download(url, tmp)
           ("scale/inference.py", "__init__"), ("scale/inference.py", "write")}  # block writers


def _writes(tree: ast.AST):
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            attr = node.func.attr
            if attr in ("write_text", "write_bytes"):
                target = node.func.value
            elif attr == "write_table":  # pyarrow.parquet.write_table(table, where)
                target = node.args[1] if len(node.args) > 1 else None
            elif attr in WRITERS:
                target = node.args[0] if node.args else None
                if target is None and attr == "to_csv":
                    continue  # to_csv() returns a string
            elif attr == "save" and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id == "torch":
                target = node.args[1] if len(node.args) > 1 else None
            else:
                continue
            yield func.name, node.lineno, attr, target
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "open" and len(node.args) > 1 \
                    and isinstance(node.args[1], ast.Constant) and "w" in str(node.args[1].value):
                yield func.name, node.lineno, "open", node.args[0]


def test_every_file_write_goes_through_a_temporary_path():
    """Static check of the package: writers write to ``tmp`` (from atomic_path) or a buffer."""
    root = Path(permaplug.__file__).parent
    bad = []
    for py in sorted(root.rglob("*.py")):
        rel = py.relative_to(root).as_posix()
        for func, line, attr, target in _writes(ast.parse(py.read_text(), str(py))):
            if (rel, func) in ALLOWED:
                continue
            if not (isinstance(target, ast.Name) and target.id in TEMP_NAMES):
                bad.append(f"{rel}:{line} {func}: {attr}({ast.unparse(target) if target else ''})")
    assert not bad, "\n".join(bad)


def test_a_failing_later_step_leaves_the_run_incomplete(catalog, tmp_path):
    """Training succeeds but the projection step fails (the catalog has no scenario entry):
    one error line, no COMPLETE marker; ``--resume --no-project`` then completes the run
    without training again."""
    out = tmp_path / "run"
    args = [a for a in ARGS if a != "--no-project"]
    res = invoke("run", "--catalog", catalog, *args, "--out", out)
    line = [x for x in res.output.splitlines() if x.startswith("Error:")]
    assert res.exit_code == 1 and len(line) == 1 and "scenario" in line[0], res.output
    assert "Traceback" not in res.output
    assert (out / "metrics.json").exists() and not (out / "COMPLETE").exists()
    weights = (out / "checkpoints/gru/model.pt").stat().st_mtime_ns
    res = invoke("run", "--catalog", catalog, *ARGS, "--out", out, "--resume")
    assert res.exit_code == 0, res.output
    assert (out / "COMPLETE").exists()
    assert (out / "checkpoints/gru/model.pt").stat().st_mtime_ns == weights  # not retrained
