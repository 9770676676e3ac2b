"""What became of a replayed key: pure, dataclasses in, a verdict out (`imgproc dlq replay --follow`).

The follow loop (:mod:`dlq_replayer.follow`) observes a key with S3 HEADs and a bounded read of the
DLQ, and asks :func:`classify` what the observation means. The rules mirror the handler's own
(docs/design.md, "Reconcile rules"), read from the outside:

- **failed again**: a message for the key is back on the DLQ since the replay (the handler
  dead-lettered it with a class, or SQS redrove it: ``RetriesExhausted``). The DLQ is message-level,
  so every key the message names has failed again, whatever S3 shows;
- **ignored**: the handler acknowledges the record and touches nothing (a key outside
  ``SOURCE_PREFIX``, a folder marker, another bucket: :func:`processor.renditions.ignore_reason`), so
  nothing will ever show in S3: known from the message alone;
- **source gone**: the source no longer exists and none of its renditions does either (the handler
  deletes them, ``DELETE_ON_REMOVE``); with ``DELETE_ON_REMOVE`` off nothing will ever delete them,
  so the missing source alone is the outcome;
- **rendered**: every configured rendition carries the source's present ETag and today's recipe
  digest in its marker (:meth:`toolkit.renditions.Candidate.is_current`, the handler's own test);
- **pending**: anything else, for now (the message is still queued, in flight or being retried).
  A rendition whose ``source-key`` marker names another source key (two sources mapping to one
  rendition key, e.g. ``original/a`` rendered as PNG and ``original/a.png``) is that key's, never
  this one's (:attr:`toolkit.renditions.Candidate.claimed_by`): the key stays pending, with
  ``claimed_by`` saying which key holds it (`imgproc explain` names the fix: rename one source).

Failed again, ignored, source gone and rendered are final: the loop stops looking at such a key.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.dead_letters import DeadLetter
from toolkit.renditions import Candidate


class Outcome(enum.StrEnum):
    RENDERED = "rendered"
    FAILED_AGAIN = "failed again"
    IGNORED = "ignored"
    SOURCE_GONE = "source gone"
    PENDING = "pending"

    @property
    def final(self) -> bool:
        return self is not Outcome.PENDING


@dataclass(frozen=True)
class Observation:
    """What one round saw of a key: its source, each configured size's candidates, the DLQ."""

    source_etag: str | None  # without quotes; None: the source does not exist
    sizes: Sequence[Sequence[Candidate]]  # one entry per configured size; unused without a source
    dead_letter: DeadLetter | None = None  # a message back on the DLQ since the replay naming the key
    delete_on_remove: bool = True
    ignored: str | None = None  # why the handler ignores the record (then nothing else is looked at)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    error_class: str | None = None
    error_message: str | None = None
    message_id: str | None = None  # failed again: the DLQ message that says so
    ignored: str | None = None  # ignored: the handler's reason (e.g. outside-source-prefix)
    claimed_by: str | None = None  # pending: another source key holds one of its rendition keys


def classify(seen: Observation) -> Verdict:
    """The outcome of a replayed key, by the rules of the module doc."""
    back = seen.dead_letter
    if back is not None:
        return Verdict(Outcome.FAILED_AGAIN, back.error_class, back.error_message, back.message_id)
    if seen.ignored is not None:
        return Verdict(Outcome.IGNORED, ignored=seen.ignored)
    if seen.source_etag is None:
        leftovers = any(c.metadata is not None for size in seen.sizes for c in size)
        gone = not seen.delete_on_remove or not leftovers
        return Verdict(Outcome.SOURCE_GONE if gone else Outcome.PENDING)
    etag = seen.source_etag
    rendered = bool(seen.sizes) and all(any(c.is_current(etag) for c in size) for size in seen.sizes)
    if rendered:
        return Verdict(Outcome.RENDERED)
    claims = [c.claimed_by for size in seen.sizes for c in size if c.claimed_by is not None]
    return Verdict(Outcome.PENDING, claimed_by=claims[0] if claims else None)
