"""Only the main thread of `imgproc up` takes the stop signals (imgproc/signals.py says why)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from imgproc import embedded, signals


def blocked_in(thread: threading.Thread) -> set[int]:
    """The signals ``thread`` blocks, as the kernel says (/proc/self/task/TID/status, SigBlk)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
    return {signum for signum in range(1, 65) if mask & (1 << (signum - 1))}


def test_a_helper_thread_and_the_threads_it_starts_never_take_a_stop_signal() -> None:
    release = threading.Event()
    grandchild: list[threading.Thread] = []

    def helper() -> None:
        inner = threading.Thread(target=release.wait)
        inner.start()
        grandchild.append(inner)
        release.wait()

    thread = threading.Thread(target=helper)
    signals.start_helper_thread(thread)
    try:
        while not grandchild:
            time.sleep(0.01)
        for started in (thread, grandchild[0]):
            assert blocked_in(started) >= signals.STOP_SIGNALS
        assert not signals.STOP_SIGNALS & blocked_in(threading.current_thread())  # unchanged here
    finally:
        release.set()


def test_the_embedded_aws_serves_in_a_thread_that_leaves_the_stop_signals_to_the_main_one() -> None:
    aws = embedded.EmbeddedAws(port=0)
    aws.start()
    try:
        assert aws._thread is not None
        assert blocked_in(aws._thread) >= signals.STOP_SIGNALS
    finally:
        aws.stop()


def test_a_signal_sent_while_blocked_is_handled_by_the_main_thread_when_unblocked() -> None:
    idle = threading.Event()
    signals.start_helper_thread(threading.Thread(target=idle.wait, daemon=True))
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the signal is sent inside the block
            with signals.blocked():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # not delivered yet: no thread takes it
            time.sleep(2)  # delivered to this thread as the block ends: interrupted at once
    finally:
        idle.set()
    # Delivered to the helper thread instead, the handler would run only once the sleep ended.
    assert time.monotonic() - started < 1
