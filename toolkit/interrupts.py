"""Ctrl-C as a request to stop at the next safe point, not an exception in the middle of an AWS call.

A ``KeyboardInterrupt`` raised inside ``ReceiveMessage`` loses the answer: SQS has already hidden the
messages it chose, and without their receipt handles nobody can make them visible again before the
visibility timeout. So the first Ctrl-C only sets an event that the loops check between calls; the
command then stops after the call in hand, releases what it holds and prints its summary. A second
Ctrl-C raises at once, for an operator who really must leave now.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, TextIO


class CtrlCStops:
    """Within the block, the first Ctrl-C sets ``stop`` and prints ``notice``; the next one raises."""

    def __init__(self, stop: threading.Event, notice: str, stream: TextIO | None = None) -> None:
        self.stop = stop
        self.notice = notice
        self.stream = stream
        self.previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        print(f"\n{self.notice} (Ctrl-C again to stop at once)", file=self.stream or sys.stderr, flush=True)

    def __enter__(self) -> CtrlCStops:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def check(stop: threading.Event | None) -> None:
    """Raise ``KeyboardInterrupt`` here, at a safe point, when a stop was asked for."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt
