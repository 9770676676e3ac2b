"""The live counters of `imgproc up` (and `imgproc demo --keep`): what the local pipeline has done so far.

On a terminal rich keeps them as one table redrawn in place, with notices (a worker restarted, a
function error) printed above it; elsewhere (a log file, a pipe) every change is a plain line, at most
one per :data:`COUNTER_INTERVAL` seconds (:class:`LinePrinter`): that is what scripts read.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from rich.live import Live

from toolkit.terminal import Table, live

COUNTERS = (
    "received",
    "rendered",
    "skipped",
    "deleted",
    "ignored",  # test events, keys outside the prefix: without it, received would not add up
    "dead-lettered",
    "retried",
    "function errors",
)
COUNTER_INTERVAL = 2.0  # seconds between counter lines when stderr is not a terminal


class Counted(Protocol):
    """What the counters are read from (:class:`imgproc.local.LocalRuntime`)."""

    totals: dict[str, int]

    @property
    def failure(self) -> str | None: ...

    def take_notices(self) -> list[str]: ...


def counters_line(totals: dict[str, int]) -> str:
    return " | ".join(f"{name} {totals.get(name, 0)}" for name in COUNTERS)


def counters_table(totals: dict[str, int]) -> Table:
    """The counters as a one-row table: names over numbers (the terminal's form)."""
    return Table(COUNTERS, [[f"{totals.get(name, 0):,}" for name in COUNTERS]], right=range(len(COUNTERS)))


class LinePrinter:
    """When to print the counters line where stderr is not a terminal (a log file, a pipe): every
    change, at most one line per ``interval`` seconds, and a change held back by that limit is
    printed once the interval is over, so the last line printed is never stale."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval, self._clock = interval, clock
        self._shown: str | None = None
        self._at = -math.inf

    def due(self, line: str) -> bool:
        """True when ``line`` should be printed now (it is then taken as shown)."""
        if line == self._shown or self._clock() - self._at < self._interval:
            return False
        self._shown, self._at = line, self._clock()
        return True

    def pending(self, line: str) -> bool:
        """True when ``line`` was never printed (print it before exiting)."""
        return line != self._shown


def serve_until_interrupted(
    runtime: Counted,
    interval: float = 0.5,
    stream: TextIO | None = None,
    announce: Callable[[], None] | None = None,
) -> bool:
    """Call ``announce`` (the banner saying "Ctrl-C to stop"), then show the live counters and notices
    on ``stream`` (stderr) until Ctrl-C (True) or until the poller gives up (False).

    The banner is printed inside the same ``try`` that turns Ctrl-C into a normal stop: a user (or a
    script) that reacts to it at once must not land between the two and be told it interrupted a start.
    """
    out = stream or sys.stderr
    printer = None
    try:
        if announce is not None:
            announce()
        display = live(out)
        printer = None if display is not None else LinePrinter(COUNTER_INTERVAL)
        if display is not None:
            with display:
                _show_live(runtime, display, interval)
        else:
            assert printer is not None
            _print_lines(runtime, printer, out, interval)
    except KeyboardInterrupt:
        pass
    for notice in runtime.take_notices():
        print(notice, file=out, flush=True)
    if runtime.failure is not None:
        return False
    line = counters_line(runtime.totals)
    if printer is not None and printer.pending(line):
        print(line, file=out, flush=True)
    print("stopping: letting in-flight batches finish", file=out, flush=True)
    return True


def _show_live(runtime: Counted, display: Live, interval: float) -> None:
    """The counters as a table redrawn in place, notices printed above it; the last counts stay."""
    try:
        while True:
            for notice in runtime.take_notices():
                display.console.print(notice)
            display.update(counters_table(runtime.totals).rich(), refresh=True)
            if runtime.failure is not None:
                return
            time.sleep(interval)
    finally:
        display.update(counters_table(runtime.totals).rich(), refresh=True)


def _print_lines(runtime: Counted, printer: LinePrinter, out: TextIO, interval: float) -> None:
    """Notices and counter lines, one a line: what a log file or a pipe gets."""
    while runtime.failure is None:
        for notice in runtime.take_notices():
            print(notice, file=out, flush=True)
        line = counters_line(runtime.totals)
        if printer.due(line):
            print(line, file=out, flush=True)
        time.sleep(interval)
