"""Which thread of an `imgproc up` process takes Ctrl-C, SIGTERM and SIGHUP: the main thread, always.

CPython runs a Python signal handler only in the main thread, but the kernel hands a signal sent to
the process to any thread that does not block it. While the main thread blocks the stop signals (for
the moment it starts a worker, see :mod:`imgproc.workers`), a signal would land in a helper thread:
its handler is then marked pending and runs only when the main thread next notices, which an idle
process may never do (seen: a Ctrl-C during start-up lost, `up` running on). So every helper thread
is started with the stop signals blocked, and inherits that mask: a signal sent while the main thread
blocks them waits, pending, until it unblocks them, and is handled there.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """Block the stop signals in this thread for the ``with`` block; a signal meanwhile stays pending
    and is delivered when it ends (a child process started inside inherits the blocked mask)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_helper_thread(thread: threading.Thread) -> None:
    """Start ``thread`` so that it (and every thread it starts) never takes a stop signal."""
    with blocked():
        thread.start()
