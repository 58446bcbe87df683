"""``permaplug.commands.background``: work done in a second process while the networks train."""
from __future__ import annotations

import os
import time

import pytest

from permaplug.commands.background import (
    BackgroundLost,
    Prefetch,
    PrefetchedRerun,
    _CallStream,
)
from permaplug.core.errors import DataError


def fake_rerun(metadata, periods, window, deltas, progress=True):
    """Stands in for the emulator rerun (importable by the spawned child)."""
    if metadata.get("fail"):
        raise DataError("demo grid does not match its catalog")
    return {"pid": os.getpid(), "periods": list(periods), "window": window,
            "deltas": list(deltas), "progress": progress}


def _finished(pre: Prefetch, timeout: float = 60.0) -> Prefetch:
    """Wait until the prefetch's process has answered (as training does, in a real run)."""
    end = time.monotonic() + timeout
    while not pre._job.ready():
        assert time.monotonic() < end, "background process did not answer"
        time.sleep(0.05)
    return pre


def test_a_call_is_computed_in_another_process():
    pre = Prefetch()
    pre.add("pid", os.getpid)
    assert pre.start()
    assert _finished(pre).take("pid") != os.getpid()


def test_a_call_raises_its_exception_where_taken():
    pre = Prefetch()
    pre.add("bad", int, "not a number")
    assert pre.start()
    with pytest.raises(ValueError, match="not a number"):
        _finished(pre).take("bad")


def test_an_unpicklable_result_is_raised_as_background_lost():
    pre = Prefetch()
    pre.add("lock", threading_lock)
    assert pre.start()
    with pytest.raises(BackgroundLost, match="not transferable"):
        _finished(pre).take("lock")


def threading_lock():
    """A result that cannot be pickled back to the parent."""
    import threading

    return threading.Lock()


def test_prefetch_hands_each_result_out_once_and_errors_where_taken():
    pre = Prefetch()
    pre.add("pid", os.getpid)
    pre.add("bad", int, "not a number")
    pre.add("sum", sum, [1, 2, 3])
    assert pre.take("pid") is None  # not started: nothing prefetched
    assert pre.start()
    _finished(pre)
    assert pre.take("unknown", "default") == "default"
    assert pre.take("sum") == 6
    assert pre.take("sum", "again") == "again"  # once
    with pytest.raises(ValueError, match="not a number"):
        pre.take("bad")
    assert pre.take("pid") != os.getpid()


def test_prefetch_gives_nothing_when_the_process_dies_or_cannot_start():
    pre = Prefetch()
    pre.add("nap", time.sleep, 60)
    assert pre.start()
    pre._job._proc.kill()
    assert pre.take("nap", "computed here") == "computed here"
    local = Prefetch()
    local.add("lambda", lambda: 1)  # another process cannot import it
    assert not local.start()
    assert local.take("lambda", "computed here") == "computed here"


def test_prefetched_rerun_answers_matching_calls_from_the_background():
    calls = []

    def here(*args, **kwargs):
        calls.append((args, kwargs))
        return "computed here"

    pre = Prefetch()
    wrapped = PrefetchedRerun(fake_rerun, pre)
    meta = {"demo_version": "3", "seed": 0}
    wrapped.add(meta, [(2019, 2023, None)], 24, (1.0, 3.0, 5.0))
    assert pre.start()
    _finished(pre)
    wrapped.rerun = here  # from now on, what is not prefetched is computed here
    got = wrapped(dict(meta), [(2019, 2023, None)], 24, (1.0, 3.0, 5.0), progress=True)
    assert got["pid"] != os.getpid() and got["progress"] is False
    assert got["periods"] == [(2019, 2023, None)] and got["window"] == 24
    assert not calls
    # asked again, or with other arguments: computed in this process
    assert wrapped(meta, [(2019, 2023, None)], 24, (1.0, 3.0, 5.0)) == "computed here"
    assert wrapped(meta, [(2019, 2023, None), (2071, 2100, "rcp85")], 24, (1.0,)) == (
        "computed here")
    assert len(calls) == 2 and calls[1][1] == {"progress": True}


def test_prefetched_rerun_raises_the_background_error_and_close_stops_the_process():
    pre = Prefetch()
    wrapped = PrefetchedRerun(fake_rerun, pre)
    wrapped.add({"fail": True}, [(2019, 2023, None)], 24, (1.0,))
    pre.start()
    _finished(pre)
    with pytest.raises(DataError, match="does not match"):
        wrapped({"fail": True}, [(2019, 2023, None)], 24, (1.0,))
    slow = Prefetch()
    slow.add("nap", time.sleep, 60)
    slow.start()
    slow.close()
    assert not slow._job._proc.is_alive()
    assert slow.take("nap", "computed here") == "computed here"


def test_prefetch_not_finished_when_asked_is_stopped_and_computed_here(monkeypatch):
    # where the background process cannot be raised to this one's priority (no privilege)
    monkeypatch.setattr(_CallStream, "hurry", lambda self: False)
    pre = Prefetch()
    pre.add("pid", os.getpid)
    pre.add("nap", time.sleep, 60)
    pre.add("after", os.getpid)
    assert pre.start()
    job = pre._job
    end = time.monotonic() + 60
    while 0 not in job.answers:  # the first call is done, the second one is running
        assert time.monotonic() < end, "background process did not answer"
        job.collect()
        time.sleep(0.05)
    assert pre.take("nap", "computed here") == "computed here"
    assert not job._proc.is_alive()
    assert pre.take("pid") not in (None, os.getpid())  # answered before: still handed out
    assert pre.take("after", "computed here") == "computed here"


def nap_then_nice(seconds: float) -> int:
    """A background call that runs a while, then reports the niceness of its thread."""
    time.sleep(seconds)
    return os.nice(0)


def _may_raise_priority() -> bool:
    """True when this user may give a niced process back its priority (root, CAP_SYS_NICE)."""
    import subprocess
    import sys

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    code = "import os, time; os.nice(10); print(1, flush=True); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()
        os.setpriority(os.PRIO_PROCESS, proc.pid, mine)
        return True
    except PermissionError:
        return False
    finally:
        proc.kill()
        proc.wait()


def test_prefetch_not_finished_when_asked_is_waited_for_at_this_priority():
    if not _may_raise_priority():
        pytest.skip("raising a process's priority is not allowed here")
    pre = Prefetch()
    pre.add("nap", nap_then_nice, 4.0)
    assert pre.start()
    job = pre._job
    end = time.monotonic() + 60
    while os.getpriority(os.PRIO_PROCESS, job._proc.pid) != os.nice(0) + 10:
        assert time.monotonic() < end, "background process did not lower its priority"
        time.sleep(0.05)
    assert not job.ready()  # still sleeping when asked
    assert pre.take("nap", "computed here") == os.nice(0)  # waited for, at this priority
    assert not job._proc.is_alive()


def test_background_calls_run_at_a_lower_priority():
    pre = Prefetch()
    pre.add("nice", os.nice, 0)
    assert pre.start()
    assert _finished(pre).take("nice") == min(os.nice(0) + 10, 19)


def bars_then_sleep():
    """A background call that shows (disabled) progress bars, then runs long."""
    from tqdm.auto import tqdm

    for _ in tqdm(range(3), disable=True):
        pass
    time.sleep(60)


def test_a_process_stopped_unfinished_leaves_no_leaked_semaphore_warning():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, time\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from permaplug.commands.background import Prefetch, _CallStream\n"
            "_CallStream.hurry = lambda self: False  # stopped, not waited for\n"
            "import test_run_background as t\n"
            "pre = Prefetch(); pre.add('bars', t.bars_then_sleep); pre.start()\n"
            "time.sleep(5)\n"
            "print(pre.take('bars', 'computed here'))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert res.stdout.strip() == "computed here"
    assert "leaked" not in res.stderr, res.stderr


def test_a_large_answer_waiting_to_be_read_does_not_hold_up_the_next_call():
    pre = Prefetch()
    pre.add("big", os.urandom, 8_000_000)  # far more than a pipe holds
    pre.add("when", time.time)
    assert pre.start()
    time.sleep(4.0)  # the parent reads nothing meanwhile (it trains)
    asked = time.time()
    assert len(pre.take("big")) == 8_000_000
    assert pre.take("when") < asked  # the second call ran while the first answer waited


def slow_import() -> str:
    """Unpickling helper that takes 3 s (as a Dataset's unpickling imports xarray first)."""
    time.sleep(3.0)
    return "imported"


class SlowToUnpickle:
    """An argument whose unpickling in the child takes 3 s, before what follows it is read."""

    def __reduce__(self):
        return slow_import, ()


def second_size(first: str, data: bytes) -> int:
    return len(data)


def test_starting_does_not_wait_for_the_child_to_unpickle_its_calls():
    pre = Prefetch()
    pre.add("size", second_size, SlowToUnpickle(), os.urandom(200_000))  # > a pipe's 64 KiB
    t = time.perf_counter()
    assert pre.start()
    assert time.perf_counter() - t < 2.0  # the child needs 3 s before it reads the rest
    assert _finished(pre).take("size") == 200_000
