"""Bring one source key's renditions in line with the source as it is *now*.

Events are hints: duplicated, late, out of order, replayed or backfilled, they all land here and
the outcome depends only on the current state of S3, which makes every one of them safe:

- source gone: its renditions are deleted (``DELETE_ON_REMOVE``): those the HEADs found marked with
  this source key, never a rendition another source made under a shared name;
- source present but its current version cannot be rendered (a permanent error: not an image,
  corrupt, too large, unsupported): its renditions show a version the source no longer has, so they
  are deleted, then the error propagates and the batch dead-letters the message;
- every rendition current: skip (a HEAD each, sent at once with the source's: one round trip), once
  any other-format leftover of an earlier render (``auto``'s JPEG/PNG switch) is deleted;
- otherwise: GET pinned to the ETag seen, render the stale ones, PUT, check the source is unchanged.

With ``CATALOG_TABLE`` or ``NOTIFY_TOPIC_ARN`` set, :mod:`processor.followups` records and announces
the outcome once the renditions are written and verified; with both unset, nothing changes here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from observability import tracing
from observability.outcomes import Outcome
from processor import fanout, imaging, markers, storage
from processor.deps import Deps
from processor.describe import Chosen
from processor.errors import ImageTooLarge, PermanentError, SourceChanged
from processor.events import ObjectRef
from processor.renditions import Candidate, Plan, ignore_reason, plan_renditions


@dataclass
class Result:
    """What a record's reconcile did: its outcome and, for the logs and metrics, what it cost."""

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


class ReconcileFailed(Exception):
    """A record's reconcile raised ``cause``; what was known by then travels with it.

    The batch classifies ``cause`` (transient or permanent) and, to dead-letter the record, needs the
    source's HEAD (``source``, None when the failure came first) and whether the version's stale
    renditions were already removed (``stale_removed``, for the log line).
    """

    def __init__(self, cause: Exception, *, source: storage.SourceHead | None, stale_removed: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.source = source
        self.stale_removed = stale_removed


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


def reconcile(ref: ObjectRef, deps: Deps, *, redelivered: bool = False) -> Result:
    """Make the renditions of ``ref.key`` match the source's current state; see the module doc.

    ``deps.followups`` (catalog, notifications) runs after the renditions are current;
    ``redelivered`` says that an earlier attempt of the record's message may have rendered it (SQS
    delivered it before, or it was replayed from the DLQ): it decides re-announcements on a skip.
    Raises :class:`ReconcileFailed` around whatever failed.
    """
    record = _Record(ref, deps, redelivered=redelivered)
    try:
        return record.reconcile()
    except Exception as exc:
        raise ReconcileFailed(
            exc, source=record.result.source, stale_removed=record.result.stale_removed
        ) from exc


class _Record:
    """One record's reconcile: its reference, the batch's dependencies, and the result filled in as
    the work goes (timings included, even when a stage raises)."""

    def __init__(self, ref: ObjectRef, deps: Deps, *, redelivered: bool) -> None:
        self.ref = ref
        self.deps = deps
        self.config = deps.config
        self.redelivered = redelivered
        self.result = Result(Outcome.SKIPPED)
        self.stage: imaging.Stage = functools.partial(_stage, self.result.timings_ms)
        self.plans: list[Plan] = []
        self.heads = _Heads([])

    def reconcile(self) -> Result:
        ref, result = self.ref, self.result
        reason = ignore_reason(ref.bucket, ref.key, self.config)
        if reason:
            result.outcome, result.reason = Outcome.IGNORED, reason
            return result
        self.plans = plan_renditions(self.config, ref.key)

        with self.stage("head"):
            checked_at = int(time.time())
            source, self.heads = _head_all(self.deps.s3, ref, self.config.dest_bucket, self.plans)
        if source is None:
            return self._remove_renditions(checked_at=checked_at)
        result.source = source
        structlog.contextvars.bind_contextvars(source_etag=source.etag)  # on every later line of the record
        try:
            return self._render_current(source)
        except PermanentError:
            self._remove_stale_after_failure(source)
            raise

    def _render_current(self, source: storage.SourceHead) -> Result:
        """Render what is stale of the source version ``source`` (:attr:`heads`: what the renditions'
        HEADs found); a permanent error means this version cannot be rendered at all."""
        ref, config, s3, plans, result, stage = (
            self.ref,
            self.config,
            self.deps.s3,
            self.plans,
            self.result,
            self.stage,
        )
        if source.size > config.max_source_bytes:
            raise ImageTooLarge(
                f"source is {source.size} bytes, limit MAX_SOURCE_BYTES={config.max_source_bytes}"
            )

        heads = self.heads
        stale, current, leftovers = _stale_plans(plans, heads, source.etag, ref.key)
        if not stale:
            if leftovers:  # an earlier render's other format that a failed try left behind
                with stage("delete"):
                    storage.delete_keys(s3, config.dest_bucket, leftovers)
                self._check_unchanged(
                    source, f"changed while its leftover renditions were deleted ({source.etag})"
                )
            chosen = [Chosen(candidate) for candidate in current.values()]
            self.deps.followups.after_skip(ref, source, chosen, redelivered=self.redelivered, stage=stage)
            return result

        with stage("get"):
            data = storage.get_source(s3, ref.bucket, ref.key, source.etag, config.max_source_bytes)
        result.source_bytes = len(data)
        rendering = imaging.render_source(
            data, [plans[i].spec for i in stale], max_pixels=config.max_pixels, stage=stage
        )
        chosen_by_plan = {i: Chosen(candidate) for i, candidate in current.items()}
        with stage("put"):
            puts: list[Callable[[], None]] = []
            obsolete: list[str] = list(leftovers)
            for index, output in zip(stale, rendering.renditions, strict=True):
                plan = plans[index]
                candidate = plan.candidate_for(output.format)
                puts.append(
                    functools.partial(
                        storage.put_rendition,
                        s3,
                        config.dest_bucket,
                        candidate.key,
                        output.data,
                        content_type=output.format.content_type,
                        cache_control=config.cache_control,
                        metadata=markers.build(ref.key, source.etag, candidate.digest),
                    )
                )
                chosen_by_plan[index] = Chosen(candidate, output=output)
                # `auto` may have switched between JPEG and PNG since the last render.
                obsolete += [key for key in stale[index] if key != candidate.key]
            fanout.run_all(puts)  # every PUT at once: one round trip
            if obsolete:  # only once the new ones are written
                storage.delete_keys(s3, config.dest_bucket, obsolete)
        result.outcome = Outcome.RENDERED
        result.renditions = rendering.renditions

        # A newer upload that landed while we rendered may already have been processed by another
        # worker; our older output must not be the last word.  Retrying re-reconciles against it.
        self._check_unchanged(source, f"changed while rendering (ETag {source.etag})")
        chosen = [chosen_by_plan[i] for i in range(len(plans))]
        self.deps.followups.after_render(ref, source, rendering.source, chosen, stage=stage)
        return result

    def _remove_stale_after_failure(self, source: storage.SourceHead) -> None:
        """The source's current version cannot be rendered: whatever renditions exist show an older
        version the source no longer has, so they go before the message is dead-lettered.

        A failure here propagates (a transient error: the record is retried, never dead-lettered
        with stale renditions left). If the source changed meanwhile, another worker may have
        rendered the new version just before our delete removed it: :class:`SourceChanged` makes
        the retry reconcile again against that version instead.
        """
        self._delete_all_renditions()
        self.result.stale_removed = True
        self._check_unchanged(source, f"changed while its unrenderable version {source.etag} was handled")

    def _remove_renditions(self, *, checked_at: int) -> Result:
        ref, result, followups = self.ref, self.result, self.deps.followups
        if not self.config.delete_on_remove:
            if followups.catalog_on:
                followups.after_removal(ref, checked_at=checked_at, renditions_kept=True, stage=self.stage)
                # as below: a re-upload racing the mark must not stay marked
                self._check_still_gone("reappeared while marking it deleted")
            result.outcome, result.reason = Outcome.IGNORED, "source-missing"
            return result
        self._delete_all_renditions()
        followups.after_removal(ref, checked_at=checked_at, renditions_kept=False, stage=self.stage)
        # A re-upload racing the delete must not lose its renditions (nor its catalog item): if the
        # source is back, retry; the retry renders it, or finds it current and repairs the catalog.
        self._check_still_gone("reappeared while deleting its renditions")
        result.outcome = Outcome.DELETED
        return result

    def _delete_all_renditions(self) -> None:
        """Delete the renditions the HEADs found of this source key: never one another source made
        (a name shared by two sources), and no blind delete of a key found empty, which another
        source's render may fill meanwhile. A render of this key landing after the HEADs needs no
        blind delete either: its own check after writing sees the source changed or gone, and its
        retry reconciles. A HEAD that failed on a key to decide about is raised (retried)."""
        with self.stage("delete"):
            keys = [
                key
                for plan, found in zip(self.plans, self.heads.found, strict=True)
                for key in _existing_own(plan, found, self.ref.key)
            ]
            storage.delete_keys(self.deps.s3, self.config.dest_bucket, keys)

    def _check_unchanged(self, source: storage.SourceHead, what: str) -> None:
        """:class:`SourceChanged` unless the source is still the version ``source``."""
        with self.stage("head"):
            after = storage.head_source(self.deps.s3, self.ref.bucket, self.ref.key)
        if after is None or after.etag != source.etag:
            raise SourceChanged(f"s3://{self.ref.bucket}/{self.ref.key} {what}")

    def _check_still_gone(self, what: str) -> None:
        """:class:`SourceChanged` if the source is back (a re-upload raced the removal)."""
        with self.stage("head"):
            if storage.head_source(self.deps.s3, self.ref.bucket, self.ref.key) is not None:
                raise SourceChanged(f"s3://{self.ref.bucket}/{self.ref.key} {what}")


@dataclass(frozen=True)
class _Heads:
    """What the HEADs of a record's rendition candidates found, per plan and candidate (in the order
    of :attr:`Plan.candidates`): the marker metadata, None when the key does not exist, or the
    exception its HEAD raised (raised only if the renditions turn out to matter)."""

    found: list[list[dict[str, str] | BaseException | None]]


def _head_all(
    s3: Any, ref: ObjectRef, dest_bucket: str, plans: list[Plan]
) -> tuple[storage.SourceHead | None, _Heads]:
    """HEAD the source and every candidate key of every plan at once: one round trip for a skip
    whatever the number of sizes. A failure of the source's HEAD is raised; a rendition's is kept in
    the result (the source may be gone, or too large: then the renditions' state does not matter)."""
    keys = [c.key for plan in plans for c in plan.candidates]
    calls: list[Callable[[], Any]] = [functools.partial(storage.head_source, s3, ref.bucket, ref.key)]
    calls += [functools.partial(storage.head_metadata, s3, dest_bucket, key) for key in keys]
    source, *found = fanout.settle(calls)
    if isinstance(source, BaseException):
        raise source
    per_plan: list[list[dict[str, str] | BaseException | None]] = []
    for plan in plans:
        per_plan.append(found[: len(plan.candidates)])
        found = found[len(plan.candidates) :]
    return source, _Heads(per_plan)


def _existing_own(
    plan: Plan, found: list[dict[str, str] | BaseException | None], source_key: str
) -> dict[str, dict[str, str]]:
    """The candidate keys of ``plan`` whose HEAD found a rendition of ``source_key`` (or one with no
    ``source-key`` marker), with its markers: what this record may delete. A failed HEAD among them
    is raised."""
    own = {}
    for candidate, metadata in zip(plan.candidates, found, strict=True):
        if isinstance(metadata, BaseException):
            raise metadata
        if metadata is not None and not markers.made_for_another_source(metadata, source_key):
            own[candidate.key] = metadata
    return own


def _stale_plans(
    plans: list[Plan], heads: _Heads, etag: str, source_key: str
) -> tuple[dict[int, list[str]], dict[int, Candidate], list[str]]:
    """The plans with no current rendition (by index: the keys holding a rendition of this source
    under another candidate, to delete once the new one is written); for every other plan (by
    index) its current candidate; and the leftovers: the other candidates of those current plans
    that hold a rendition of this source (an older format that a failed try, or a racing record, did
    not delete), to be deleted. A rendition another source made is never current for this one, nor
    a leftover. The failure of a HEAD that decides is raised here."""
    stale: dict[int, list[str]] = {}
    current: dict[int, Candidate] = {}
    leftovers: list[str] = []
    for index, (plan, found) in enumerate(zip(plans, heads.found, strict=True)):
        own = _existing_own(plan, found, source_key)
        chosen = next(
            (c for c in plan.candidates if c.key in own and markers.is_current(own[c.key], etag, c.digest)),
            None,
        )
        if chosen is None:
            stale[index] = list(own)
        else:
            current[index] = chosen
            leftovers += [key for key in own if key != chosen.key]
    return stale, current, leftovers
