"""Bring one source key's renditions in line with the source as it is *now*.

Events are hints: duplicated, late, out of order, replayed or backfilled, they all land here and
the outcome depends only on the current state of S3, which makes every one of them safe.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from observability import tracing
from processor import imaging, markers, storage
from processor.config import Config
from processor.errors import ImageTooLarge, SourceChanged
from processor.events import ObjectRef
from processor.renditions import Plan, ignore_reason, plan_renditions


class Outcome(enum.Enum):
    RENDERED = "rendered"
    SKIPPED = "skipped"  # every rendition already current: HEADs only
    DELETED = "deleted"  # source gone, renditions removed
    IGNORED = "ignored"  # not ours to process (prefix, loop guard, test event, source gone)


@dataclass
class Result:
    outcome: Outcome
    reason: str | None = None
    source_etag: str | None = None
    source_bytes: int = 0
    renditions: list[imaging.Rendered] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def output_bytes(self) -> int:
        return sum(len(r.data) for r in self.renditions)


@contextmanager
def _stage(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Time the block into ``timings[stage]`` (ms, even when it raises) and trace it as a subsegment."""
    start = time.perf_counter()
    try:
        with tracing.subsegment(stage):
            yield
    finally:
        elapsed = (time.perf_counter() - start) * 1000
        timings[stage] = round(timings.get(stage, 0.0) + elapsed, 2)


def reconcile(ref: ObjectRef, config: Config, s3: Any) -> Result:
    """Make the renditions of ``ref.key`` match the source's current state; see the module doc."""
    reason = ignore_reason(ref.bucket, ref.key, config)
    if reason:
        return Result(Outcome.IGNORED, reason)
    plans = plan_renditions(config, ref.key)
    result = Result(Outcome.SKIPPED)
    stage = functools.partial(_stage, result.timings_ms)

    with stage("head"):
        source = storage.head_source(s3, ref.bucket, ref.key)
    if source is None:
        return _remove_renditions(ref, config, s3, plans, result=result, stage=stage)
    result.source_etag = source.etag
    structlog.contextvars.bind_contextvars(source_etag=source.etag)  # on every later line of the record
    if source.size > config.max_source_bytes:
        raise ImageTooLarge(
            f"source is {source.size} bytes, limit MAX_SOURCE_BYTES={config.max_source_bytes}"
        )

    with stage("head"):
        stale, existing = _stale_plans(s3, config.dest_bucket, plans, source.etag)
    if not stale:
        return result

    with stage("get"):
        data = storage.get_source(s3, ref.bucket, ref.key, source.etag, config.max_source_bytes)
    result.source_bytes = len(data)
    rendered = imaging.render(data, [plan.spec for plan in stale], max_pixels=config.max_pixels, stage=stage)
    with stage("put"):
        for plan, output in zip(stale, rendered, strict=True):
            key = plan.candidate_for(output.format).key
            storage.put_rendition(
                s3,
                config.dest_bucket,
                key,
                output.data,
                content_type=output.format.content_type,
                cache_control=config.cache_control,
                metadata=markers.build(ref.key, source.etag, output.spec.digest()),
            )
            # `auto` may have switched between JPEG and PNG since the last render.
            obsolete = [c.key for c in plan.candidates if c.key != key and c.key in existing]
            if obsolete:
                storage.delete_keys(s3, config.dest_bucket, obsolete)
    result.outcome = Outcome.RENDERED
    result.renditions = rendered

    # A newer upload that landed while we rendered may already have been processed by another
    # worker; our older output must not be the last word.  Retrying re-reconciles against it.
    with stage("head"):
        after = storage.head_source(s3, ref.bucket, ref.key)
    if after is None or after.etag != source.etag:
        raise SourceChanged(f"s3://{ref.bucket}/{ref.key} changed while rendering (ETag {source.etag})")
    return result


def _stale_plans(s3: Any, bucket: str, plans: list[Plan], etag: str) -> tuple[list[Plan], set[str]]:
    """The plans with no current rendition, and which candidate keys exist at all."""
    stale: list[Plan] = []
    existing: set[str] = set()
    for plan in plans:
        current = False
        for candidate in plan.candidates:
            metadata = storage.head_metadata(s3, bucket, candidate.key)
            if metadata is not None:
                existing.add(candidate.key)
                current = current or markers.is_current(metadata, etag, candidate.digest)
        if not current:
            stale.append(plan)
    return stale, existing


def _remove_renditions(
    ref: ObjectRef,
    config: Config,
    s3: Any,
    plans: list[Plan],
    *,
    result: Result,
    stage: Callable[[str], AbstractContextManager[None]],
) -> Result:
    if not config.delete_on_remove:
        result.outcome, result.reason = Outcome.IGNORED, "source-missing"
        return result
    with stage("delete"):
        storage.delete_keys(s3, config.dest_bucket, [c.key for plan in plans for c in plan.candidates])
    # A re-upload racing the delete must not lose its renditions: if the source is back, retry.
    with stage("head"):
        if storage.head_source(s3, ref.bucket, ref.key) is not None:
            raise SourceChanged(f"s3://{ref.bucket}/{ref.key} reappeared while deleting its renditions")
    result.outcome = Outcome.DELETED
    return result
