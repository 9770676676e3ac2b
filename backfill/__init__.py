"""`imgproc backfill`: enqueue S3-event-shaped messages for source objects that already exist.

For a stack deployed over a bucket that already holds images (or after the queue lost messages,
e.g. past its retention), this lists the source bucket and puts one message per key on the ingest
queue, exactly as S3 would have on upload; the function then renders whatever is missing or stale.

Usage::

    imgproc backfill --dry-run                          # what would be enqueued (nothing is sent)
    imgproc backfill                                    # every key under the source prefix
    imgproc backfill --prefix original/2024/ --suffix .jpg,.png --since 7d --rate 200
    imgproc backfill --skip-current                     # HEAD the renditions first: stale keys only
    imgproc backfill --max-backlog 2000                 # stay at most ~2,000 messages ahead of the function
    imgproc backfill --start-after 'original/m/…'       # resume where an earlier run stopped
    imgproc backfill --from-inventory s3://inv/…/manifest.json   # read an S3 Inventory report instead
    imgproc backfill --concurrency 16                   # 16 SendMessageBatch requests in flight

Listing is streamed (``ListObjectsV2`` pages of 1,000, in key order) and sent in
``SendMessageBatch`` calls of 10 as it goes, ``--concurrency`` calls in flight at once
(:mod:`backfill.window`), so memory stays bounded however many keys the bucket holds.
``--from-inventory`` reads the keys from an S3 Inventory report's gzip CSV files instead
(:mod:`backfill.inventory`): the way to enumerate buckets of tens of millions of keys. Filters: the
prefix (default and outer bound: the function's ``SOURCE_PREFIX``), ``--since`` (``LastModified`` at
or after an ISO-8601 time or ``7d``/``12h``/``30m``, inclusive at S3's one-second precision),
``--suffix`` (comma-separated, case-insensitive), and whatever the handler would ignore anyway
(folder markers). With ``--skip-current`` each remaining key's renditions are HEADed (4 per
``--concurrency`` at a time) and the key is skipped when every rendition's idempotency marker
matches the listed ETag and the current recipe, as the handler itself would decide.

The messages are indistinguishable, for the handler, from S3's own: one record per message with
every field of a real ``ObjectCreated`` record (key URL-encoded as S3 does, ETag, size, sequencer),
``configurationId`` ``imgproc-backfill`` and one extra field, ``"imgprocBackfill": true``
(:data:`processor.events.BACKFILL_MARKER`), which the handler logs as ``backfill=true``. The event
name is always ``ObjectCreated:Put``: the handler reconciles each key with its current state, so the
name is only a hint.

Pacing: ``--rate`` caps messages per second; ``--max-backlog N`` holds the sends back while the ingest
queue has N or more messages waiting (:class:`~toolkit.throughput.Backpressure`), so that a
backfill of millions never runs more than about N messages ahead of the function, whatever speed it
is consuming at: fresh uploads then wait behind at most N backfilled keys, not behind the whole
backlog, and no backfilled message sits in the queue long enough to meet its retention period.

Checkpoint and resume: the summary's ``last_key`` is the greatest key such that it and every key
before it was enqueued, skipped or filtered out; batches are acknowledged in any order, so it is the
position before the lowest entry not acknowledged yet. With an inventory the checkpoint is
``DATA_FILE:LINE`` (``checkpoint`` in the summary). Ctrl-C starts no new batch, settles the batches in
flight, prints ``interrupted; resume with: imgproc backfill --start-after '<checkpoint>' …`` and
exits 130 (a second Ctrl-C stops at once; the checkpoint is then still safe, but the unsettled
batches may be sent again on resume). Entries that SQS still refuses after the retries are listed,
the checkpoint stays before the first of them, and the exit status is 1. Resuming from the
checkpoint guarantees that every key is enqueued at least once; a key is enqueued twice only when it
follows a failed entry or was in flight at a second Ctrl-C or a connection failure, which is
harmless: the handler reconciles. ``--max-keys N`` stops after N listed keys the same way (exit 0),
for a trial run or a run in slices.

Exit status: 0 all matching keys enqueued, 1 some entries could not be sent (or AWS failed
mid-run), 2 usage or stack errors, 130 interrupted.

Modules: :mod:`backfill.records` (the messages), :mod:`backfill.job` (listing, decisions and the
checkpoint), :mod:`backfill.window` (batches in flight), :mod:`backfill.inventory` (S3 Inventory
reports), :mod:`backfill.command` (options, the run, the summary).
"""

from backfill.command import add_arguments, parse_since, parse_suffixes, render, resume_command, run
from backfill.job import Backfill, BackfillProgress, Options, Summary, Target
from backfill.records import encode_key, message_body, s3_record

__all__ = [
    "Backfill",
    "BackfillProgress",
    "Options",
    "Summary",
    "Target",
    "add_arguments",
    "encode_key",
    "message_body",
    "parse_since",
    "parse_suffixes",
    "render",
    "resume_command",
    "run",
    "s3_record",
]
