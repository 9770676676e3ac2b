"""Batches of 10 sent in parallel, with a checkpoint that stays exact whatever order they finish in.

One round trip per ``SendMessageBatch`` bounds a sequential backfill at 10 keys per round trip (500
keys/s at 20 ms). :class:`SendWindow` keeps up to ``concurrency`` batches in flight on a thread pool
(boto3 clients are thread-safe) while the caller goes on listing; the caller blocks in
:meth:`SendWindow.submit` when the window is full, so memory stays bounded by the window, not by the
number of keys.

Batches finish out of order, so the checkpoint cannot simply follow the last batch that succeeded:
each batch holds the checkpoint at the position before its first entry (its *hold*) until it is
acknowledged, and the checkpoint is the lowest hold, i.e. the position before the lowest unacknowledged
entry. A batch with an entry SQS still refused after the retries keeps a hold for good, before that
entry. Everything on the caller's side (counts, the summary) happens in the caller's thread, in
:meth:`SendWindow.reap`: the workers only send.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from toolkit.throughput import BatchSendResult, send_batch


@dataclass(frozen=True)
class Mark:
    """A position in the enumeration: the key there, and what ``--start-after`` takes to resume after
    it (the key itself when listing, ``DATA_FILE:LINE`` when reading an inventory). ``key`` is None
    for the position before the first key."""

    key: str | None
    at: str | None


@dataclass
class Entry:
    key: str
    body: str
    before: Mark  # the checkpoint if this entry is the first one not enqueued


WAIT_SLICE = 0.5  # seconds: the longest blocking wait for a batch, between checks for signals
Settled = Callable[[Sequence[Entry], BatchSendResult], None]


class SendWindow:
    """Up to ``concurrency`` ``SendMessageBatch`` requests in flight; see the module's docstring.

    ``on_settled(entries, result)`` is called in the caller's thread for each batch, once its fate is
    known (from :meth:`submit`, :meth:`reap` or :meth:`drain`).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        *,
        concurrency: int,
        on_settled: Settled,
        send_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.sqs, self.queue_url, self.concurrency = sqs, queue_url, concurrency
        self._on_settled = on_settled
        self._send_sleep = send_sleep
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="backfill-send")
        self._inflight: dict[Future[BatchSendResult], tuple[int, list[Entry]]] = {}
        self._holds: OrderedDict[int, Mark] = OrderedDict()  # batch number -> checkpoint it holds
        # Batches done, in the order they finished, to settle in the caller's thread.
        self._done: queue.SimpleQueue[Future[BatchSendResult]] = queue.SimpleQueue()
        self._numbers = itertools.count()

    @property
    def in_flight(self) -> int:
        """Batches sent and not yet settled."""
        return len(self._inflight)

    def hold(self) -> Mark | None:
        """The checkpoint the window holds (before its lowest unacknowledged entry), or None."""
        return next(iter(self._holds.values()), None)

    def submit(self, entries: list[Entry]) -> None:
        """Send ``entries`` (at most 10) once the window has room; settles finished batches meanwhile."""
        self.reap()
        while len(self._inflight) >= self.concurrency:
            self.reap(block=True)
        number = next(self._numbers)
        self._holds[number] = entries[0].before
        bodies = [{"MessageBody": e.body} for e in entries]
        future = self._pool.submit(send_batch, self.sqs, self.queue_url, bodies, sleep=self._send_sleep)
        self._inflight[future] = (number, entries)
        future.add_done_callback(self._done.put)

    def reap(self, *, block: bool = False) -> None:
        """Settle the batches that have finished (with ``block``: wait for at least one). Cheap when
        none has: called after every key."""
        if not self._inflight:
            return
        while True:
            try:
                future = self._done.get(block=block, timeout=WAIT_SLICE if block else None)
            except queue.Empty:
                if block:
                    continue  # a slice of the wait has passed: signals (a second Ctrl-C) get in between
                return
            block = False
            number, entries = self._inflight.pop(future)
            result = future.result()  # an unexpected error propagates; its batch keeps its hold
            if result.failed:
                self._holds[number] = entries[min(result.failed)].before  # for good
            else:
                del self._holds[number]
            self._on_settled(entries, result)

    def drain(self) -> None:
        """Wait until every batch sent is settled."""
        while self._inflight:
            self.reap(block=True)

    def close(self, *, wait_for_sends: bool = True) -> None:
        """Stop the workers. Batches not started are dropped (they keep their holds); with
        ``wait_for_sends`` the requests already under way are waited for, otherwise they finish in
        the background (a second Ctrl-C) and the process exits when they have."""
        self._pool.shutdown(wait=wait_for_sends, cancel_futures=True)
