"""The messages `imgproc backfill` enqueues: S3 ``ObjectCreated:Put`` records, one per message,
indistinguishable for the handler from S3's own but for ``"imgprocBackfill": true``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from processor import markers
from processor.events import BACKFILL_MARKER

CONFIGURATION_ID = "imgproc-backfill"  # s3.configurationId of every backfilled record
EVENT_NAME = "ObjectCreated:Put"  # a hint only: the handler reconciles with the source's current state
PRINCIPAL = "imgproc-backfill"  # userIdentity / ownerIdentity principalId


def encode_key(key: str) -> str:
    """The key as S3 writes it into event records: form-encoded (space as ``+``), ``/`` kept."""
    return quote_plus(key, safe="/")


def s3_record(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    region: str,
    event_time: datetime,
    sequencer: str,
    request_id: str,
) -> dict[str, Any]:
    """One ``ObjectCreated:Put`` record shaped exactly like S3's, plus ``imgprocBackfill: true``.

    ``versionId`` is absent: ``ListObjectsV2`` does not return it, and the handler reads the current
    version anyway.
    """
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": EVENT_NAME,
        "userIdentity": {"principalId": PRINCIPAL},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": CONFIGURATION_ID},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": PRINCIPAL},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": encode_key(key),
                "size": int(size),
                "eTag": markers.strip_quotes(etag),
                "sequencer": sequencer,
            },
        },
        BACKFILL_MARKER: True,
    }


def message_body(record: dict[str, Any]) -> str:
    """An SQS body as S3 writes it: ``{"Records": [record]}``, compact JSON."""
    return json.dumps({"Records": [record]}, separators=(",", ":"))
