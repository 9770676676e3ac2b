"""`imgproc enqueue`'s work: one synthetic S3 event per key on the ingest queue, in the backfill's shape.

The message is exactly what `imgproc backfill` sends for a key (:func:`backfill.records.s3_record`,
``"imgprocBackfill": true``), with the source's present ETag and size when it exists. For a source
that is gone the record still goes out (size 0, no ETag): the handler reconciles the key with its
present state, so that event deletes the renditions left behind (what ``explain`` calls orphaned).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backfill.records import message_body, s3_record
from processor.storage import SourceHead
from toolkit.throughput import SQS_BATCH, send_batch


@dataclass(frozen=True)
class Item:
    key: str  # the source key
    source: SourceHead | None


@dataclass
class Result:
    enqueued: list[Item] = field(default_factory=list)
    failed: list[tuple[Item, str]] = field(default_factory=list)  # (item, reason)


def entry(
    item: Item, *, bucket: str, region: str, request_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The ``SendMessageBatch`` entry for ``item`` (without its ``Id``)."""
    record = s3_record(
        bucket=bucket,
        key=item.key,
        size=item.source.size if item.source else 0,
        etag=item.source.etag if item.source else "",
        region=region,
        event_time=now or datetime.now(UTC),
        sequencer=f"{time.time_ns():018X}",
        request_id=request_id,
    )
    return {"MessageBody": message_body(record)}


def enqueue(sqs: Any, queue_url: str, items: list[Item], *, bucket: str, region: str) -> Result:
    """Send one message per item, in batches of 10; which were sent and which refused (and why)."""
    result = Result()
    request_id = uuid.uuid4().hex[:16].upper()
    for start in range(0, len(items), SQS_BATCH):
        chunk = items[start : start + SQS_BATCH]
        sent = send_batch(
            sqs,
            queue_url,
            [entry(item, bucket=bucket, region=region, request_id=request_id) for item in chunk],
        )
        result.enqueued += [chunk[i] for i in sent.sent]
        result.failed += [(chunk[i], reason) for i, reason in sent.failed.items()]
    return result
