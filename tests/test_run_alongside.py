"""``permaplug.commands.alongside``: the explanation step forked alongside the projection."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from permaplug.commands.alongside import ExplainAlongside, can_explain_alongside

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest


def _recording_step(run_dir: Path, explainer: str, progress: bool = True,
                    wait_projection=None) -> Path:
    """Stands in for explain_run: records what it got, in the child, into the run folder."""
    got = wait_projection()
    out = run_dir / "explanations" / explainer
    out.mkdir(parents=True)
    (out / "seen.json").write_text(json.dumps({"pid": os.getpid(), "progress": progress,
                                               "projection": got}))
    return out


def _failing_step(run_dir: Path, explainer: str, progress: bool = True,
                  wait_projection=None) -> Path:
    raise ValueError("explainer exploded\nsecond line")


def test_the_child_explains_after_the_projection_says_where_its_inputs_are(tmp_path):
    job = ExplainAlongside(_recording_step, tmp_path, "shap")
    job.projection_inputs(tmp_path / "projections" / "qm-2030", ("rcp26", "rcp85"))
    job.no_projection()  # a second message is not sent
    out = job.result()
    assert out == tmp_path / "explanations" / "shap" and job.error is None
    seen = json.loads((out / "seen.json").read_text())
    assert seen["pid"] != os.getpid() and seen["progress"] is False
    assert seen["projection"] == ["qm-2030", ["rcp26", "rcp85"]]


def test_no_projection_is_said_as_none(tmp_path):
    job = ExplainAlongside(_recording_step, tmp_path)
    out = job.result()  # never told: result() tells the child there is none
    assert json.loads((out / "seen.json").read_text())["projection"] is None


def test_a_failing_child_gives_none_and_its_error_line(tmp_path):
    job = ExplainAlongside(_failing_step, tmp_path)
    assert job.result() is None
    assert job.error == "ValueError: explainer exploded"


def test_a_killed_child_gives_none(tmp_path):
    job = ExplainAlongside(_recording_step, tmp_path)  # waits for a message that never comes
    job._proc.kill()
    assert job.result() is None and "exit code" in job.error


def _wait_for(path: Path, seconds: float = 30.0) -> None:
    import time

    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def _prepare_into(folder: Path):
    def prepare() -> None:
        (folder / "prepared").write_text(str(os.getpid()))
    return prepare


def _step_reading_the_trained_mark(run_dir: Path, explainer: str, progress: bool = True,
                                   wait_projection=None) -> Path:
    trained = (run_dir / "trained").read_text()  # written by the parent before start()
    out = run_dir / "explanations" / explainer
    out.mkdir(parents=True)
    (out / "seen.json").write_text(json.dumps({"pid": os.getpid(), "trained": trained}))
    return out


def test_the_child_prepares_at_once_and_explains_only_once_started(tmp_path):
    job = ExplainAlongside(_step_reading_the_trained_mark, tmp_path, "shap",
                           prepare=_prepare_into(tmp_path))
    _wait_for(tmp_path / "prepared")  # prepared before the networks exist
    assert int((tmp_path / "prepared").read_text()) != os.getpid()
    assert not (tmp_path / "explanations").exists()  # waiting for start()
    (tmp_path / "trained").write_text("yes")  # the networks are saved
    job.start()
    job.no_projection()
    out = job.result()
    seen = json.loads((out / "seen.json").read_text())
    assert seen == {"pid": int((tmp_path / "prepared").read_text()), "trained": "yes"}


def test_a_failing_prepare_does_not_stop_the_explanation(tmp_path):
    def prepare() -> None:
        raise ImportError("no such library")

    job = ExplainAlongside(_recording_step, tmp_path, prepare=prepare)
    job.start()
    assert job.result() == tmp_path / "explanations" / "shap" and job.error is None


def test_a_child_never_started_explains_nothing(tmp_path):
    job = ExplainAlongside(_recording_step, tmp_path, prepare=_prepare_into(tmp_path))
    _wait_for(tmp_path / "prepared")
    job.close()  # training failed: the parent stops the child
    assert not job._proc.is_alive()
    assert not (tmp_path / "explanations").exists()


def test_not_forked_when_switched_off_or_on_several_threads(monkeypatch):
    assert can_explain_alongside("cpu", None)
    assert not can_explain_alongside("cpu", 2)
    assert not can_explain_alongside("cuda", None)
    monkeypatch.setenv("PERMAPLUG_BACKGROUND", "0")
    assert not can_explain_alongside("cpu", 1)


def test_not_forked_when_torch_runs_several_threads(tmp_path):
    import torch

    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="2 threads"):
        ExplainAlongside(_recording_step, tmp_path)


def test_explained_alongside_the_projection_equals_explained_after_it(tmp_path_factory):
    import functools
    import shutil

    import numpy as np
    import xarray as xr
    from _projection_fixtures import hist_table, scenarios, tiny_run

    from permaplug.explain.pipeline import explain_run
    from permaplug.projection.pipeline import write_projections
    from permaplug.training.runs import load_run

    run = tiny_run(tmp_path_factory.mktemp("tinyrun"))
    step = functools.partial(explain_run, n_background=20, n_explained=6,
                             options={"nsamples": 30})
    warming = {"rcp26": 0.0, "rcp45": 0.05, "rcp85": 0.1}
    outs = {}
    for how in ("after", "alongside"):
        root = tmp_path_factory.mktemp(how) / "run"
        shutil.copytree(run.path, root,
                        ignore=shutil.ignore_patterns("projections", "explanations"))
        job = ExplainAlongside(step, root) if how == "alongside" else None
        # the pair's high end (rcp45) is not the highest scenario: the child, which starts
        # before summary.json is written, must be told it
        write_projections(load_run(root), hist_table(start="2013-01-01"),
                          scenarios(warming=warming), "qm", 2030, None, progress=False,
                          pair=("rcp26", "rcp45"),
                          on_inputs=job.projection_inputs if job else None)
        outs[how] = job.result() if job else step(root, "shap", progress=False)
        assert outs[how] is not None, job.error
    for name in ("attributions_gru.nc", "scenario_attributions_gru.nc"):
        a, b = (xr.load_dataset(outs[h] / name) for h in ("after", "alongside"))
        assert a.attrs["windows"] == b.attrs["windows"]
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].values, b[var].values)
    assert b.attrs["windows"] == "rcp45 2024-2030"
    for name in ("scores.csv", "scenario_scores.csv", "rankings.csv"):
        assert (outs["after"] / name).read_text() == (outs["alongside"] / name).read_text()
    docs = [json.loads((outs[h] / "additivity.json").read_text()) for h in ("after", "alongside")]
    for doc in docs:
        doc["scenario_windows"].pop("data", None)
    assert docs[0]["models"] == docs[1]["models"]
    assert docs[0]["scenario_windows"]["models"] == docs[1]["scenario_windows"]["models"]
