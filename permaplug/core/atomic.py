"""Atomic output: write to a temporary sibling, then rename, so nothing is left half-written."""
from __future__ import annotations

import contextlib
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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else "".join(target.suffixes),
        dir=target.parent,
    )
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
        if isinstance(exc, OSError) and exc.filename == str(tmp):
            exc.filename = str(target)  # report the file the user asked for, not the temporary
        raise


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
