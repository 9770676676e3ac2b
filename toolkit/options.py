"""Option types every operator command shares, so the same option reads and fails alike everywhere.

Each is an argparse ``type=``: a bad value is one ``argument --x: ...`` line and exit status 2.
Durations: :func:`toolkit.durations.duration`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)


def positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` accepting only positive finite numbers of ``kind`` (int or float)."""

    def convert(raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if not 0 < value < math.inf:  # type: ignore[operator]
            raise argparse.ArgumentTypeError("must be a positive number")
        return value

    return convert


def whole(minimum: int, maximum: int | None = None, *, too_large: str = "") -> Callable[[str], int]:
    """An argparse ``type=`` accepting whole numbers from ``minimum`` (to ``maximum``; ``too_large``
    is then the error's wording, ``at most <maximum>`` by default)."""

    def convert(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(too_large or f"at most {maximum}")
        return value

    return convert


def add_rate(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "messages") -> None:
    """``--rate N``: at most N ``what`` per second (``args.rate``, None without a limit)."""
    parser.add_argument(
        "--rate",
        type=positive(float),
        metavar="N",
        help=f"at most N {what} per second (default: no limit)",
    )
