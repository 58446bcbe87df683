"""``permaplug.commands.background``: work done in a second process while the networks train."""
from __future__ import annotations

import os
import time

import pytest

from permaplug.commands.background import Background, BackgroundLost, PrefetchedRerun
from permaplug.core.errors import DataError


def fake_rerun(metadata, periods, window, deltas, progress=True):
    """Stands in for the emulator rerun (importable by the spawned child)."""
    if metadata.get("fail"):
        raise DataError("demo grid does not match its catalog")
    return {"pid": os.getpid(), "periods": list(periods), "window": window,
            "deltas": list(deltas), "progress": progress}


def test_background_returns_the_value_computed_in_another_process():
    job = Background(os.getpid)
    assert job.result() != os.getpid()


def test_background_raises_the_exception_of_the_call():
    job = Background(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        job.result()


def test_background_lost_when_the_process_dies_without_an_answer():
    job = Background(time.sleep, 60)
    job._proc.kill()
    with pytest.raises(BackgroundLost, match="without a result"):
        job.result()


def test_prefetched_rerun_answers_matching_calls_from_the_background():
    calls = []

    def fallback(*args, **kwargs):
        calls.append((args, kwargs))
        return "computed here"

    pre = PrefetchedRerun(fallback, target=fake_rerun)
    meta = {"demo_version": "3", "seed": 0}
    pre.start(meta, [(2019, 2023, None)], 24, (1.0, 3.0, 5.0))
    got = pre(dict(meta), [(2019, 2023, None)], 24, (1.0, 3.0, 5.0), progress=True)
    assert got["pid"] != os.getpid() and got["progress"] is False
    assert got["periods"] == [(2019, 2023, None)] and got["window"] == 24
    assert not calls
    # asked again (or with other arguments): computed in this process
    assert pre(meta, [(2019, 2023, None)], 24, (1.0, 3.0, 5.0)) == "computed here"
    assert pre(meta, [(2019, 2023, None), (2071, 2100, "rcp85")], 24, (1.0,)) == "computed here"
    assert len(calls) == 2 and calls[1][1] == {"progress": True}


def test_prefetched_rerun_raises_the_background_error_and_close_stops_unused_jobs():
    pre = PrefetchedRerun(lambda *a, **k: "computed here", target=fake_rerun)
    pre.start({"fail": True}, [(2019, 2023, None)], 24, (1.0,))
    with pytest.raises(DataError, match="does not match"):
        pre({"fail": True}, [(2019, 2023, None)], 24, (1.0,))
    pre.start({"seed": 1}, [(2019, 2023, None)], 24, (1.0,))
    job = next(iter(pre._pending.values()))
    pre.close()
    assert not pre._pending and not job._proc.is_alive()


def test_prefetched_rerun_not_started_for_a_function_another_process_cannot_import():
    pre = PrefetchedRerun(lambda *a, **k: "computed here")
    assert pre.start({"seed": 0}, [(2019, 2023, None)], 24, (1.0,)) is False
    assert pre({"seed": 0}, [(2019, 2023, None)], 24, (1.0,)) == "computed here"
