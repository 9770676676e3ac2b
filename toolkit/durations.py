"""Durations as operators type and read them: one parser and two spellings, for every command.

- :func:`parse_duration` reads what options take (``--older-than 2h``, ``1h30m``, ``1.5d``);
- :func:`format_duration` writes a duration back the way it is typed (``1h30m``), so a summary or a
  resume command can be pasted;
- :func:`format_age` writes a measured time like a clock, to a fixed precision (``3m05s``, ``2h07m``):
  ages of messages, ETAs.
"""

from __future__ import annotations

import argparse
import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``2h``, ``1.5d``, ``2w`` or ``1h30m`` (any case, blanks ignored);
    ValueError for anything else."""
    compact = "".join(text.split()).lower()
    if not compact or _DURATION.sub("", compact):
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 2h, 1d or 1h30m")
    return float(sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(compact)))


def duration(raw: str) -> float:
    """An argparse ``type=`` for :func:`parse_duration`."""
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a whole number of seconds: ``2h``, ``1h30m``, ``45s``."""
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_age(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``4d03h``; ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
