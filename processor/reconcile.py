"""Bring one source key's renditions in line with the source as it is *now*.

Events are hints: duplicated, late, out of order, replayed or backfilled, they all land here and
the outcome depends only on the current state of S3, which makes every one of them safe:

- source gone: its renditions are deleted (``DELETE_ON_REMOVE``);
- source present but its current version cannot be rendered (a permanent error: not an image,
  corrupt, too large, unsupported): its renditions show a version the source no longer has, so they
  are deleted, then the error propagates and the batch dead-letters the message;
- every rendition current: skip (a HEAD each);
- otherwise: GET pinned to the ETag seen, render the stale ones, PUT, check the source is unchanged.

With ``CATALOG_TABLE`` or ``NOTIFY_TOPIC_ARN`` set, :mod:`processor.followups` records and announces
the outcome once the renditions are written and verified; with both unset, nothing changes here.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from observability import tracing
from processor import imaging, markers, storage
from processor.config import Config
from processor.errors import ImageTooLarge, PermanentError, SourceChanged
from processor.events import ObjectRef
from processor.followups import Chosen, Followups
from processor.renditions import Candidate, Plan, ignore_reason, plan_renditions


class Outcome(enum.Enum):
    RENDERED = "rendered"
    SKIPPED = "skipped"  # every rendition already current: HEADs only
    DELETED = "deleted"  # source gone, renditions removed
    IGNORED = "ignored"  # not ours to process (prefix, loop guard, test event, source gone)


@dataclass
class Result:
    outcome: Outcome
    reason: str | None = None
    source: storage.SourceHead | None = None  # the source's HEAD, once known
    source_bytes: int = 0
    renditions: list[imaging.Rendered] = field(default_factory=list)
    stale_removed: bool = False  # the current version failed permanently; its old renditions were deleted
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


def reconcile(
    ref: ObjectRef,
    config: Config,
    s3: Any,
    *,
    followups: Followups | None = None,
    redelivered: bool = False,
    result: Result | None = None,
) -> Result:
    """Make the renditions of ``ref.key`` match the source's current state; see the module doc.

    ``followups`` (catalog, notifications) runs after the renditions are current; ``redelivered``
    says that an earlier attempt of the record's message may have rendered it (SQS delivered it
    before, or it was replayed from the DLQ): it decides re-announcements on a skip.
    ``result``, when given, is filled in as the work goes, so that a caller whose record failed can
    still see what was known (the source's HEAD).
    """
    if result is None:
        result = Result(Outcome.SKIPPED)
    reason = ignore_reason(ref.bucket, ref.key, config)
    if reason:
        result.outcome, result.reason = Outcome.IGNORED, reason
        return result
    plans = plan_renditions(config, ref.key)
    stage = functools.partial(_stage, result.timings_ms)

    with stage("head"):
        checked_at = int(time.time())
        source = storage.head_source(s3, ref.bucket, ref.key)
    if source is None:
        return _remove_renditions(
            ref, config, s3, plans, result=result, stage=stage, followups=followups, checked_at=checked_at
        )
    result.source = source
    structlog.contextvars.bind_contextvars(source_etag=source.etag)  # on every later line of the record
    try:
        return _render_current(
            ref,
            config,
            s3,
            plans,
            source,
            result=result,
            stage=stage,
            followups=followups,
            redelivered=redelivered,
        )
    except PermanentError:
        _remove_stale_after_failure(ref, config, s3, plans, source, result=result, stage=stage)
        raise


def _render_current(
    ref: ObjectRef,
    config: Config,
    s3: Any,
    plans: list[Plan],
    source: storage.SourceHead,
    *,
    result: Result,
    stage: imaging.Stage,
    followups: Followups | None,
    redelivered: bool,
) -> Result:
    """Render what is stale of the source version ``source``; a permanent error means this version
    cannot be rendered at all."""
    if source.size > config.max_source_bytes:
        raise ImageTooLarge(
            f"source is {source.size} bytes, limit MAX_SOURCE_BYTES={config.max_source_bytes}"
        )

    with stage("head"):
        stale, existing, current = _stale_plans(s3, config.dest_bucket, plans, source.etag)
    if not stale:
        if followups is not None:
            chosen = [Chosen(candidate) for candidate in current.values()]
            followups.after_skip(ref, source, chosen, redelivered=redelivered, stage=stage)
        return result

    with stage("get"):
        data = storage.get_source(s3, ref.bucket, ref.key, source.etag, config.max_source_bytes)
    result.source_bytes = len(data)
    rendering = imaging.render_source(
        data, [plans[i].spec for i in stale], max_pixels=config.max_pixels, stage=stage
    )
    chosen_by_plan = {i: Chosen(candidate) for i, candidate in current.items()}
    with stage("put"):
        for index, output in zip(stale, rendering.renditions, strict=True):
            plan = plans[index]
            candidate = plan.candidate_for(output.format)
            storage.put_rendition(
                s3,
                config.dest_bucket,
                candidate.key,
                output.data,
                content_type=output.format.content_type,
                cache_control=config.cache_control,
                metadata=markers.build(ref.key, source.etag, candidate.digest),
            )
            chosen_by_plan[index] = Chosen(candidate, output=output)
            # `auto` may have switched between JPEG and PNG since the last render.
            obsolete = [c.key for c in plan.candidates if c.key != candidate.key and c.key in existing]
            if obsolete:
                storage.delete_keys(s3, config.dest_bucket, obsolete)
    result.outcome = Outcome.RENDERED
    result.renditions = rendering.renditions

    # A newer upload that landed while we rendered may already have been processed by another
    # worker; our older output must not be the last word.  Retrying re-reconciles against it.
    with stage("head"):
        after = storage.head_source(s3, ref.bucket, ref.key)
    if after is None or after.etag != source.etag:
        raise SourceChanged(f"s3://{ref.bucket}/{ref.key} changed while rendering (ETag {source.etag})")
    if followups is not None:
        chosen = [chosen_by_plan[i] for i in range(len(plans))]
        followups.after_render(ref, source, rendering.source, chosen, stage=stage)
    return result


def _remove_stale_after_failure(
    ref: ObjectRef,
    config: Config,
    s3: Any,
    plans: list[Plan],
    source: storage.SourceHead,
    *,
    result: Result,
    stage: imaging.Stage,
) -> None:
    """The source's current version cannot be rendered: whatever renditions exist show an older
    version the source no longer has, so they go before the message is dead-lettered.

    A failure here propagates (a transient error: the record is retried, never dead-lettered with
    stale renditions left). If the source changed meanwhile, another worker may have rendered the
    new version just before our delete removed it: :class:`SourceChanged` makes the retry reconcile
    again against that version instead.
    """
    with stage("delete"):
        storage.delete_keys(s3, config.dest_bucket, [c.key for plan in plans for c in plan.candidates])
    result.stale_removed = True
    with stage("head"):
        after = storage.head_source(s3, ref.bucket, ref.key)
    if after is None or after.etag != source.etag:
        raise SourceChanged(
            f"s3://{ref.bucket}/{ref.key} changed while its unrenderable version {source.etag} was handled"
        )


def _stale_plans(
    s3: Any, bucket: str, plans: list[Plan], etag: str
) -> tuple[list[int], set[str], dict[int, Candidate]]:
    """The indexes of the plans with no current rendition, which candidate keys of those exist at
    all (to delete the one a format switch leaves behind), and for every other plan (by index) its
    current candidate. A plan's HEADs stop at its first current candidate."""
    stale: list[int] = []
    existing: set[str] = set()
    current: dict[int, Candidate] = {}
    for index, plan in enumerate(plans):
        for candidate in plan.candidates:
            metadata = storage.head_metadata(s3, bucket, candidate.key)
            if metadata is None:
                continue
            existing.add(candidate.key)
            if markers.is_current(metadata, etag, candidate.digest):
                current[index] = candidate
                break
        else:
            stale.append(index)
    return stale, existing, current


def _remove_renditions(
    ref: ObjectRef,
    config: Config,
    s3: Any,
    plans: list[Plan],
    *,
    result: Result,
    stage: imaging.Stage,
    followups: Followups | None,
    checked_at: int,
) -> Result:
    if not config.delete_on_remove:
        if followups is not None and followups.catalog_on:
            with stage("catalog"):
                followups.after_removal(ref, checked_at=checked_at, renditions_kept=True)
            with stage("head"):  # as below: a re-upload racing the mark must not stay marked
                if storage.head_source(s3, ref.bucket, ref.key) is not None:
                    raise SourceChanged(f"s3://{ref.bucket}/{ref.key} reappeared while marking it deleted")
        result.outcome, result.reason = Outcome.IGNORED, "source-missing"
        return result
    with stage("delete"):
        storage.delete_keys(s3, config.dest_bucket, [c.key for plan in plans for c in plan.candidates])
    if followups is not None:
        with stage("catalog"):
            followups.after_removal(ref, checked_at=checked_at, renditions_kept=False)
    # A re-upload racing the delete must not lose its renditions (nor its catalog item): if the
    # source is back, retry; the retry renders it, or finds it current and repairs the catalog.
    with stage("head"):
        if storage.head_source(s3, ref.bucket, ref.key) is not None:
            raise SourceChanged(f"s3://{ref.bucket}/{ref.key} reappeared while deleting its renditions")
    result.outcome = Outcome.DELETED
    return result
