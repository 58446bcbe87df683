"""The calibration period option (``--calibration FIRST-LAST``), parsed without importing the
correction pipeline (so that a mistake is answered at once)."""
from __future__ import annotations

from permaplug.core.errors import ConfigError


def parse_calibration(text: str) -> tuple[int, int]:
    """``"2001-2023"`` -> ``(2001, 2023)`` (ConfigError naming the option otherwise)."""
    try:
        a, b = (int(p) for p in str(text).split("-"))
    except ValueError:
        raise ConfigError(f"--calibration {text!r}: expected FIRST-LAST years, e.g. 2001-2023") \
            from None
    if a > b:
        raise ConfigError(f"--calibration {text!r}: first year after last year")
    return a, b
