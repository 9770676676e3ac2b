"""A key's state, decided from what was observed: pure (observations in, dataclasses out), no AWS.

The inputs are what :mod:`explainer.probe` and :mod:`toolkit.renditions` read: the source's HEAD
(None when there is no source), each configured rendition's candidate keys with the marker each one
carries (None when absent) and the digest today's recipe gives it, the dead letters naming the key,
the catalog item. The rules are the handler's own (docs/design.md, "Reconcile rules"): a rendition
is *current* when its marker's ``source-etag`` is the source's ETag and its ``rendition`` digest is
today's recipe's (:func:`processor.markers.is_current`); *stale* when it exists but is not;
*missing*; *orphaned* when it exists and the source does not; *claimed* when its ``source-key``
marker names another source key (two sources map to one rendition key: a name collision, which no
re-enqueue fixes, it only flips which of the two is stale). The verdict is one state for the key, one
line saying why, and the command that fixes it.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processor import errors, markers
from processor.storage import SourceHead
from toolkit.dead_letters import DeadLetter
from toolkit.renditions import SizeObservation

RECENT_UPLOAD_SECONDS = 60  # a source younger than this may still be on its way through the queue
DEFAULT_MAX_REPLAYS = 3  # `imgproc dlq replay --max-replays` default: a message at it needs --force
# The permanent classes that say the source's bytes are the problem (fixed by a new upload).
SOURCE_FAULTS = frozenset(
    cls.__name__
    for cls in (errors.NotAnImage, errors.CorruptImage, errors.ImageTooLarge, errors.UnsupportedImage)
)


class RenditionState(enum.StrEnum):
    CURRENT = "current"  # made from the source's present ETag with today's recipe
    STALE = "stale"  # exists, but made from another ETag or with another recipe (or unmarked)
    MISSING = "missing"
    ORPHANED = "orphaned"  # exists, and the source does not
    CLAIMED = "claimed"  # exists, made from another source key that maps to the same rendition key
    NONE = "none"  # absent, and so is the source: nothing is missing (shown as "none (source gone)")


class State(enum.StrEnum):
    HEALTHY = "healthy"  # every configured rendition current
    KEPT = "kept"  # the source is gone and DELETE_ON_REMOVE is off: renditions kept on purpose
    STALE = "stale"
    MISSING = "missing"
    ORPHANED = "orphaned"
    DEAD_LETTERED = "dead-lettered"
    COLLISION = "collision"  # another source key's renditions are at this key's rendition keys
    NO_SOURCE = "no-source"  # neither the source nor any rendition exists


HEALTHY_STATES = frozenset({State.HEALTHY, State.KEPT})


@dataclass(frozen=True)
class RenditionReport:
    size: str
    key: str  # where it is (or, missing, where it would be)
    state: RenditionState
    expected_recipe: str  # today's digest
    markers: Mapping[str, str] | None = None  # None: no object
    made_from_etag: str | None = None
    recipe: str | None = None  # the digest on the marker
    reason: str = ""  # why stale
    leftovers: tuple[str, ...] = ()  # other candidate keys that exist too
    claimed_by: str | None = None  # claimed: the source key its marker names

    @property
    def recipe_current(self) -> bool | None:
        return None if self.markers is None else self.recipe == self.expected_recipe


@dataclass(frozen=True)
class Verdict:
    state: State
    summary: str  # one line
    fix: str | None  # the command that fixes it, or "fix the source: …"; None when healthy

    @property
    def healthy(self) -> bool:
        return self.state in HEALTHY_STATES


@dataclass(frozen=True)
class Fixes:
    """How the fix commands are spelled: ``imgproc`` plus the options this run was given that are not
    the defaults (``--stack-name x``), so that the line can be pasted as it is."""

    options: tuple[str, ...] = ()

    def _command(self, *words: str) -> str:
        return " ".join(["imgproc", *words, *self.options])

    def enqueue(self, key: str) -> str:
        return self._command("enqueue", shlex.quote(key))

    def replay(self, key: str, *, force: bool) -> str:
        return self._command("dlq", "replay", "--key", shlex.quote(key), *(["--force"] if force else []))

    def purge(self, key: str) -> str:
        return self._command("dlq", "purge", "--key", shlex.quote(key))


@dataclass(frozen=True)
class Explanation:
    source_key: str
    source: SourceHead | None
    renditions: list[RenditionReport]
    dead_letters: list[DeadLetter]
    catalog: Mapping[str, Any] | None
    verdict: Verdict
    notes: list[str] = field(default_factory=list)


def rendition_report(observed: SizeObservation, source: SourceHead | None) -> RenditionReport:
    """One configured size's state against the source as it is now."""
    existing = [c for c in observed.candidates if c.metadata is not None]
    first = observed.candidates[0]
    if not existing and source is None:
        gone = RenditionState.NONE
        return RenditionReport(observed.size, first.key, gone, first.digest, reason="source gone")
    if not existing:
        return RenditionReport(observed.size, first.key, RenditionState.MISSING, first.digest)
    ours = [c for c in existing if c.claimed_by is None]
    if not ours:  # every object there is another source's: this key has none of its own
        claimed = existing[0]
        return RenditionReport(
            size=observed.size,
            key=claimed.key,
            state=RenditionState.CLAIMED,
            expected_recipe=claimed.digest,
            markers=dict(claimed.metadata or {}),
            made_from_etag=(claimed.metadata or {}).get(markers.SOURCE_ETAG),
            recipe=(claimed.metadata or {}).get(markers.RENDITION),
            reason=f"claimed by {claimed.claimed_by} (its rendition: both keys map to {claimed.key})",
            claimed_by=claimed.claimed_by,
        )
    existing = ours
    if source is not None:
        current = observed.current(source.etag)
        chosen = current[0] if current else existing[0]
        state = RenditionState.CURRENT if current else RenditionState.STALE
    else:
        chosen, state = existing[0], RenditionState.ORPHANED
    meta = dict(chosen.metadata or {})
    etag, recipe = meta.get(markers.SOURCE_ETAG), meta.get(markers.RENDITION)
    reasons = []
    if state is RenditionState.STALE and source is not None:
        if etag is None and recipe is None:
            reasons.append("it carries no marker")
        if etag is not None and etag != source.etag:
            reasons.append(f"made from ETag {etag}, the source is now {source.etag}")
        if recipe is not None and recipe != chosen.digest:
            reasons.append(f"recipe {recipe}, today's is {chosen.digest}")
    return RenditionReport(
        size=observed.size,
        key=chosen.key,
        state=state,
        expected_recipe=chosen.digest,
        markers=meta,
        made_from_etag=etag,
        recipe=recipe,
        reason="; ".join(reasons),
        leftovers=tuple(c.key for c in existing if c is not chosen),
    )


def classify(
    source_key: str,
    source: SourceHead | None,
    sizes: Sequence[SizeObservation],
    dead_letters: Sequence[DeadLetter],
    catalog: Mapping[str, Any] | None = None,
    *,
    source_bucket: str,
    delete_on_remove: bool = True,
    fixes: Fixes | None = None,
    now: datetime | None = None,
) -> Explanation:
    """Everything about one key, with its verdict."""
    fixes = fixes or Fixes()
    now = now or datetime.now(UTC)
    reports = [rendition_report(observed, source) for observed in sizes]
    letters = sorted(dead_letters, key=lambda d: d.when, reverse=True)  # newest first
    notes = []
    if source is None:
        verdict = _without_source(
            source_key,
            reports,
            letters,
            source_bucket=source_bucket,
            delete_on_remove=delete_on_remove,
            fixes=fixes,
        )
    else:
        verdict = _with_source(source_key, source, reports, letters, catalog=catalog, fixes=fixes, now=now)
        if verdict.healthy and letters:
            notes.append(
                f"{len(letters)} older failure(s) of this key are still on the DLQ (the source was "
                f"re-uploaded since); to clear them: {fixes.purge(source_key)}"
            )
    for report in reports:
        if report.leftovers:
            notes.append(
                f"{report.size}: a leftover of another format is there too: {', '.join(report.leftovers)}"
            )
    return Explanation(source_key, source, reports, letters, catalog, verdict, notes)


def _without_source(
    source_key: str,
    reports: Sequence[RenditionReport],
    letters: Sequence[DeadLetter],
    *,
    source_bucket: str,
    delete_on_remove: bool,
    fixes: Fixes,
) -> Verdict:
    orphans = [r for r in reports if r.state is RenditionState.ORPHANED]
    claimed = [r for r in reports if r.state is RenditionState.CLAIMED]
    if orphans and not delete_on_remove:
        return Verdict(
            State.KEPT,
            f"the source is gone; its {len(orphans)} rendition(s) are kept (DELETE_ON_REMOVE is off)",
            None,
        )
    if orphans:
        return Verdict(
            State.ORPHANED,
            f"the source is gone but {len(orphans)} of its renditions remain (the delete event was lost "
            "or failed); an event for the key deletes them",
            fixes.enqueue(source_key),
        )
    failed = f"; {len(letters)} failure(s) of it are on the DLQ" if letters else ""
    others = (
        f" (its rendition key(s) hold {claimed[0].claimed_by}'s renditions: a name collision, not "
        "this key's to delete)"
        if claimed
        else ""
    )
    where = f"there is no object s3://{source_bucket}/{source_key}"
    if letters:  # deleted on purpose, the message left on the DLQ is all there is to clear
        purge = fixes.purge(source_key)
        fix = f"fix the source: {where}; upload it again, or if it was deleted on purpose: {purge}"
    else:
        fix = (
            f"fix the source: {where} (upload it; keys are case-sensitive and taken as S3 stores them, "
            "not URL-encoded)"
        )
    return Verdict(State.NO_SOURCE, f"no source object and no rendition{others}{failed}", fix)


def _with_source(
    source_key: str,
    source: SourceHead,
    reports: Sequence[RenditionReport],
    letters: Sequence[DeadLetter],
    *,
    catalog: Mapping[str, Any] | None,
    fixes: Fixes,
    now: datetime,
) -> Verdict:
    stale = [r for r in reports if r.state is RenditionState.STALE]
    missing = [r for r in reports if r.state is RenditionState.MISSING]
    claimed = [r for r in reports if r.state is RenditionState.CLAIMED]
    if not stale and not missing and not claimed:
        return Verdict(
            State.HEALTHY, f"every rendition ({len(reports)}) is current with ETag {source.etag}", None
        )
    if letters:
        return _dead_lettered(source_key, source, letters[0], len(letters), fixes)
    if claimed:
        return _collision(source_key, claimed, len(reports))
    if catalog and catalog.get("status") == "dead-lettered" and catalog.get("source_etag") == source.etag:
        error_class = str(catalog.get("error_class") or "a permanent error")
        return Verdict(
            State.DEAD_LETTERED,
            f"this version was dead-lettered as {error_class} (the catalog says so; its message is no "
            "longer on the DLQ)",
            f"fix the source: it failed as {error_class}; upload a valid image",
        )
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing")
    if stale:
        parts.append(f"{len(stale)} stale ({stale[0].size}: {stale[0].reason})")
    summary = f"{' and '.join(parts)} of {len(reports)} rendition(s), nothing on the DLQ"
    age = _age_seconds(source, now)
    if age is not None and age < RECENT_UPLOAD_SECONDS:
        summary += f"; the source was written {age:.0f}s ago and may still be on its way"
    return Verdict(State.MISSING if not stale else State.STALE, summary, fixes.enqueue(source_key))


def _collision(source_key: str, claimed: Sequence[RenditionReport], total: int) -> Verdict:
    """Another source key maps to this key's rendition keys and was rendered last: enqueueing this key
    would take them back, and the next render of the other would take them again."""
    other = claimed[0].claimed_by
    return Verdict(
        State.COLLISION,
        f"{len(claimed)} of {total} rendition(s) claimed by {other} (a name collision: both keys map to "
        f"{claimed[0].key})",
        f"rename one of the two sources ({source_key} or {other}): each one's render overwrites the "
        "other's rendition, so enqueueing either only flips which one is stale",
    )


def _dead_lettered(
    source_key: str, source: SourceHead, latest: DeadLetter, count: int, fixes: Fixes
) -> Verdict:
    reason = latest.error_message or latest.error_class
    more = f" (and {count - 1} more)" if count > 1 else ""
    replays = f", replayed {latest.replay_count} time(s)" if latest.replay_count else ""
    summary = f"dead-lettered as {latest.error_class} at {latest.when or '?'}{replays}{more}"
    changed_since = (
        source.last_modified is not None
        and latest.failed_at is not None
        and (markers.utc_timestamp(source.last_modified) > latest.failed_at)
    )
    replay = fixes.replay(source_key, force=latest.replay_count >= DEFAULT_MAX_REPLAYS)
    if latest.error_class in SOURCE_FAULTS and not changed_since:
        purge = fixes.purge(source_key)
        fix = f"fix the source: {reason} (a valid upload renders by itself; then clear the DLQ: {purge})"
        if latest.error_class == errors.ImageTooLarge.__name__:
            fix = f"fix the source: {reason} (or raise the limit, then: {replay})"
        return Verdict(State.DEAD_LETTERED, summary, fix)
    if changed_since:
        summary += "; the source changed since"
    return Verdict(State.DEAD_LETTERED, summary, replay)


def _age_seconds(source: SourceHead, now: datetime) -> float | None:
    if source.last_modified is None:
        return None
    return max(0.0, (now - source.last_modified).total_seconds())
