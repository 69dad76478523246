"""Durations (``10m``) and sizes (``10MB``) as operators write them in config and rules."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``: a number of seconds, or ``90s``, ``10m``, ``1h30m``, ``7d``.

    Raises ValueError with a message fit for an operator.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 10m, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    text = str(value).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos and text[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2).lower()]
        pos = m.end()
    if not text or pos == 0 or text[pos:].strip():
        raise ValueError(f"expected a duration like 90s, 10m, 24h or 7d, got {value!r}")
    return total


def parse_size(value: str | int) -> int:
    """Bytes in ``value``: a number of bytes, or ``512KB``, ``10MB``, ``1GiB``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 10MB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value!r}")
        return value
    m = _SIZE.fullmatch(str(value))
    if not m:
        raise ValueError(f"expected a size like 512KB or 10MB, got {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
