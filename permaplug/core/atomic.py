"""Atomic output: write to a temporary sibling, then rename, so nothing is left half-written."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    The temporary name keeps the target's suffix (so writers that choose a format by extension
    still work). On any exception the temporary file or folder is removed and ``target`` is
    untouched.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.",
            suffix=suffix if suffix is not None else "".join(target.suffixes), dir=target.parent,
        )
    except OSError as exc:  # read-only folder, permission, disk full: name the file asked for
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            exc.filename = str(target)  # report the file the user asked for, not the temporary
        elif isinstance(exc, RuntimeError) and _is_write_failure(exc):
            # writers that report a failed write as RuntimeError (torch.save, netCDF4)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OSError(errno.EIO, f"could not write (disk full or not writable? {first[:120]})",
                          str(target)) from exc
        raise


_WRITE_FAILURE = ("write", "No space", "HDF error", "inline_container", "I/O", "disk",
                  "Permission denied", "Read-only")


def _is_write_failure(exc: BaseException) -> bool:
    """True when a writer's RuntimeError says that writing failed (e.g. torch's
    ``[enforce fail at inline_container.cc] ... file write failed``, netCDF's ``HDF error``)."""
    text = str(exc)
    return any(key in text for key in _WRITE_FAILURE)


def check_writable(path: Path | str) -> Path:
    """OSError naming ``path`` unless files can be created there; call it before long work.

    ``path``: an output folder (it need not exist yet: its nearest existing parent must be a
    writable folder). Nothing is left behind (a probe file is created and removed). Returns
    ``path``. Free space cannot be promised in advance: a full disk during the work is still
    reported by :func:`atomic_path`, naming the file.
    """
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{probe} is not a folder", str(path))
    try:
        fd, name = tempfile.mkstemp(prefix=".permaplug-write-check.", dir=probe)
    except OSError as exc:
        where = "" if probe == path else f" (in {probe})"
        raise OSError(exc.errno, f"cannot write here{where}: {exc.strerror or exc}",
                      str(path)) from None
    os.close(fd)
    os.unlink(name)
    return path


def write_text_atomic(target: Path | str, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>(\.[^.]+)*)$")


def is_temporary(path: Path | str) -> bool:
    """True for a temporary sibling left by :func:`atomic_path` (``.<name>.<8 chars><suffixes>``),
    e.g. after the process was killed (SIGKILL) in the middle of a write."""
    m = _TEMP_RE.match(Path(path).name)
    return bool(m) and m.group("name").endswith(m.group("suffix"))


def remove_stale_temporaries(folder: Path | str) -> list[Path]:
    """Delete the temporaries of killed writers under ``folder``; return what was removed.
    Only for folders no other process writes to (a run folder being resumed)."""
    removed = []
    for path in sorted(Path(folder).rglob(".*"), reverse=True):
        if is_temporary(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
