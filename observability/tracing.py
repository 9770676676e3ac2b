"""X-Ray tracing that is real in Lambda and costs nothing anywhere else.

In Lambda (``LAMBDA_TASK_ROOT`` set, active tracing on) botocore is patched so that every S3 and SQS
call becomes a subsegment, and the processor adds its own per record and per stage, annotated with
key, message id, key prefix, outcome and error class (searchable: :func:`record_annotations`) and
with sizes as metadata. Outside Lambda nothing is patched, no segment is opened and nothing is sent
over UDP: no "context missing" noise. Locally, ``IMGPROC_XRAY=true`` turns it on against the daemon
at ``AWS_XRAY_DAEMON_ADDRESS``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_state: dict[str, Any] = {"enabled": False, "recorder": None, "patched": False, "own_segments": False}


def configure(enabled: bool | None = None) -> bool:
    """Decide whether to trace (at cold start); patch botocore the first time it is on.

    ``enabled`` None means: in Lambda, or when ``IMGPROC_XRAY`` is true. The SDK's global recorder
    is used, so a test can give it an in-memory emitter beforehand.
    """
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    if enabled is None:
        enabled = in_lambda or os.environ.get("IMGPROC_XRAY", "").lower() in ("1", "true", "yes")
    _state["enabled"] = enabled
    if not enabled:
        return False
    from aws_xray_sdk.core import patch, xray_recorder  # noqa: PLC0415 - only paid for when tracing

    xray_recorder.configure(context_missing="LOG_ERROR", service="imgproc")
    _state["recorder"] = xray_recorder
    _state["own_segments"] = not in_lambda  # Lambda opens the segment; elsewhere we do, per invocation
    if not _state["patched"]:
        patch(["botocore"])
        _state["patched"] = True
    return True


def enabled() -> bool:
    return bool(_state["enabled"])


@contextlib.contextmanager
def invocation(name: str) -> Iterator[None]:
    """The segment of one invocation: Lambda's own, or (tracing locally) one opened here."""
    if not enabled() or not _state["own_segments"]:
        yield
        return
    recorder = _state["recorder"]
    recorder.begin_segment(name)
    try:
        yield
    finally:
        recorder.end_segment()


@contextlib.contextmanager
def subsegment(name: str, **annotations: str | int | bool) -> Iterator[Any]:
    """A subsegment around the block (None when tracing is off), annotated with ``annotations``."""
    if not enabled():
        yield None
        return
    recorder = _state["recorder"]
    with recorder.in_subsegment(name) as sub:
        for key, value in annotations.items():
            sub.put_annotation(key, value)
        yield sub


# X-Ray indexes at most 50 annotations per trace and a batch is one trace: a record adds at most five
# (message_id, key, key_prefix, outcome, error_class), so a batch of 10 stays within the index.
MAX_ANNOTATED_KEY = 250  # characters of an S3 key (up to 1,024 bytes) kept in the searchable annotation


def record_annotations(message_id: str, key: str) -> dict[str, str]:
    """The searchable annotations of a record's subsegment: on-call finds a failing key's trace with
    ``annotation.key = "original/a/b.jpg"`` or by message id. A key longer than
    :data:`MAX_ANNOTATED_KEY` characters is cut there (search it with ``BEGINSWITH``)."""
    return {
        "message_id": message_id,
        "key": key[:MAX_ANNOTATED_KEY],
        "key_prefix": key.rpartition("/")[0] + "/",
    }


def annotate(entity: Any, *, metadata: dict[str, Any] | None = None, **annotations: str | int | bool) -> None:
    """Add annotations (searchable) and metadata to a subsegment from :func:`subsegment`."""
    if entity is None:
        return
    for key, value in annotations.items():
        if value is not None:
            entity.put_annotation(key, value)
    for key, value in (metadata or {}).items():
        entity.put_metadata(key, value, "imgproc")


def in_current_trace(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap ``fn`` so that, run on another thread, its subsegments join the caller's trace.

    The SDK keeps the current segment per thread; the batch's worker threads start with none.
    """
    if not enabled():
        return fn
    recorder = _state["recorder"]
    entity = recorder.get_trace_entity()

    def run(*args: Any, **kwargs: Any) -> T:
        recorder.set_trace_entity(entity)
        try:
            return fn(*args, **kwargs)
        finally:
            recorder.clear_trace_entities()

    return run
