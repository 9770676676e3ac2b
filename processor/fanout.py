"""Independent S3 calls sent at once: in Lambda each call is a round trip of 10-30 ms, and Lambda
bills wall time, so a record's HEADs (the source's and every rendition's) cost one round trip
instead of one each, and so do its PUTs.

The calls run on one module-level thread pool, created on first use (a record that makes a single
call never starts it) and shared by the batch's record threads. Its threads are started on demand,
so it grows to the number of calls in flight and no further (``MAX_THREADS`` caps it). boto3
clients are thread-safe. Each call runs in a copy of the caller's context (the record's log context)
and joins the caller's X-Ray trace. A call here must never itself fan out: a pool thread waiting for
the pool could wait for ever.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from observability import tracing

T = TypeVar("T")

# Records in flight (CONCURRENCY, at most 64) times the calls each sends at once is the demand; threads
# beyond what botocore's connection pool holds would only queue on it.
MAX_THREADS = 64

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="s3call")
        return _pool


def settle(calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
    """Run ``calls`` at once and wait for every one of them; each one's result or the exception it
    raised, in the order of ``calls``. Nothing is left in flight when this returns."""
    if len(calls) <= 1:
        return [_outcome(call) for call in calls]
    pool = _executor()
    futures = [
        pool.submit(contextvars.copy_context().run, tracing.in_current_trace(_outcome), call)
        for call in calls[1:]
    ]
    first = _outcome(calls[0])  # the caller's thread sends one too instead of only waiting
    return [first, *(future.result() for future in futures)]


def run_all(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``calls`` at once; their results in order, or, once every call has finished, the first
    (in the order of ``calls``) exception raised."""
    outcomes = settle(calls)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value] - no exception among them


def _outcome(call: Callable[[], T]) -> T | BaseException:
    try:
        return call()
    except Exception as exc:
        return exc
