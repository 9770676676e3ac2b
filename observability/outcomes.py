"""What became of one S3 record: the one vocabulary of the handler's logs, metrics, traces, catalog
and notifications, and of the local poller's counters.

It lives here, below :mod:`processor`, because :mod:`observability.metrics` groups outcomes into its
metrics and must not import the processor (the processor imports observability). The processor, the
catalog, the notifications and the local poller all take the names from here.

A :class:`enum.StrEnum`: a member *is* its value (``Outcome.RENDERED == "rendered"``), so JSON log
lines, EMF documents, DynamoDB items and SNS attributes carry exactly the strings they always did.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    RENDERED = "rendered"  # renditions written
    SKIPPED = "skipped"  # every rendition already current: HEADs only
    DELETED = "deleted"  # source gone, renditions removed (a catalog status too: source removed)
    IGNORED = "ignored"  # not ours to process (prefix, loop guard, test event, source gone)
    RETRY = "retry"  # failed transiently (or its message did): SQS delivers it again
    DEAD_LETTERED = "dead-lettered"  # failed permanently: its message is in the DLQ with the reason


# How the metrics count them (see observability.metrics): work done, no work needed, failed.
PROCESSED: frozenset[Outcome] = frozenset({Outcome.RENDERED, Outcome.DELETED})
NOT_NEEDED: frozenset[Outcome] = frozenset({Outcome.SKIPPED, Outcome.IGNORED})
FAILED: frozenset[Outcome] = frozenset({Outcome.RETRY, Outcome.DEAD_LETTERED})
