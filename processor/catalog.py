"""The optional DynamoDB catalog (``CATALOG_TABLE``): one item per source key, written with a condition.

Item (partition key ``source_key``):

| attribute | type | meaning |
| --- | --- | --- |
| ``source_key`` | S | the source's key |
| ``source_bucket`` | S | the source's bucket |
| ``source_etag`` | S | ETag of the version described (no quotes) |
| ``source_last_modified`` | N | that version's S3 ``Last-Modified``, epoch seconds: orders versions |
| ``source_size`` | N | bytes |
| ``source_format`` | S | ``jpeg``, ``png``, ... from the header (absent when dead-lettered) |
| ``source_width``, ``source_height`` | N | displayed size, EXIF orientation applied (idem) |
| ``renditions`` | L of M | ``key``, ``width``, ``height``, ``bytes``, ``format`` of each rendition |
| ``recipe`` | S | digest of the rendition keys and recipes described (see :func:`recipe_digest`) |
| ``status`` | S | ``rendered``, ``dead-lettered`` or ``deleted`` (source removed, renditions kept) |
| ``error_class`` | S | when dead-lettered: ``NotAnImage``, ``CorruptImage``, ... |
| ``processed_at`` | S | ISO-8601 UTC time of the write |
| ``notified`` | S | the ``etag:recipe`` last announced on the SNS topic (see :mod:`processor.followups`) |

**The write condition.** Events arrive late and out of order, and two workers can reconcile the same
key at once (a duplicate event racing the retry of another). Every worker reconciles against the
source's *current* state and checks, after writing the renditions, that the source is still the
version it rendered; but between that check and the catalog write a newer version can be uploaded,
processed and catalogued by another worker. The late write must then lose. So a put succeeds only if

    attribute_not_exists(source_key)                                   -- first record of the key
    OR source_last_modified < :last_modified                           -- we describe a newer version
    OR (source_last_modified = :last_modified AND source_etag = :etag) -- the same version: rewrite

S3 assigns ``Last-Modified`` when a version is written, so a later version never has a smaller one:
a write for an older version cannot replace a newer record, and rewrites of the same version are
idempotent (the latest outcome, e.g. after a recipe change, wins). A failed condition means "a newer
record is already there": not an error. One case is left: two versions written within the same
second have equal ``Last-Modified`` (HEAD has second precision), so the condition cannot order them
and refuses the second writer, whichever it is. :func:`put` then reports a *tie*; the caller asks S3
which version is current and, if it is its own, replaces exactly the record it saw
(:func:`put` with ``replacing``), so the catalog never stays stuck on a version that is gone.

Removal (:func:`remove`) is conditioned on ``source_last_modified <= :checked_at``, the time (epoch
seconds) the source was found missing: a version uploaded later (a re-upload racing the delete)
keeps its record. A re-upload within that very second is not told apart here; the reconciler HEADs
the source again after removing, and retries if it is back (the retry restores the record).
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from observability.outcomes import Outcome

_PUT_CONDITION = (
    "attribute_not_exists(source_key) OR source_last_modified < :last_modified"
    " OR (source_last_modified = :last_modified AND source_etag = :etag)"
)
_REPLACE_CONDITION = "source_last_modified = :last_modified AND source_etag = :replacing"


@dataclass(frozen=True)
class RenditionEntry:
    """One rendition as the catalog and the notifications describe it."""

    key: str
    width: int
    height: int
    bytes: int
    format: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PutResult(enum.Enum):
    WRITTEN = "written"
    NEWER = "newer"  # the table holds a record of a newer version: ours is stale
    TIE = "tie"  # a record of another version with the same Last-Modified: the caller decides


@dataclass(frozen=True)
class PutOutcome:
    result: PutResult
    existing: dict[str, Any] | None = None  # the record that won, when not written


def epoch_seconds(when: datetime | None) -> int:
    """``Last-Modified`` as whole epoch seconds (0 when unknown: such a record loses every tie)."""
    return 0 if when is None else int(when.timestamp())


def recipe_digest(renditions: Iterable[tuple[str, str]]) -> str:
    """A digest of (rendition key, rendition digest) pairs: changes with SIZES, formats, watermark..."""
    canonical = "\n".join(f"{key}\t{digest}" for key, digest in sorted(renditions))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def rendered_item(
    *,
    bucket: str,
    key: str,
    etag: str,
    last_modified: int,
    size: int,
    source_format: str,
    width: int,
    height: int,
    renditions: Sequence[RenditionEntry],
    recipe: str,
    processed_at: str,
    notified: str | None = None,
) -> dict[str, Any]:
    """The item of a source whose renditions are all current (pure)."""
    item: dict[str, Any] = {
        **_source(bucket, key, etag, last_modified, size),
        "source_format": source_format,
        "source_width": width,
        "source_height": height,
        "renditions": [r.as_dict() for r in renditions],
        "recipe": recipe,
        "status": Outcome.RENDERED,
        "processed_at": processed_at,
    }
    if notified is not None:
        item["notified"] = notified
    return item


def dead_letter_item(
    *, bucket: str, key: str, etag: str, last_modified: int, size: int, error_class: str, processed_at: str
) -> dict[str, Any]:
    """The item of a source version that failed permanently and went to the DLQ (pure)."""
    return {
        **_source(bucket, key, etag, last_modified, size),
        "renditions": [],
        "status": Outcome.DEAD_LETTERED,
        "error_class": error_class,
        "processed_at": processed_at,
    }


def _source(bucket: str, key: str, etag: str, last_modified: int, size: int) -> dict[str, Any]:
    return {
        "source_key": key,
        "source_bucket": bucket,
        "source_etag": etag,
        "source_last_modified": last_modified,
        "source_size": size,
    }


def is_current(item: Mapping[str, Any] | None, etag: str, recipe: str) -> bool:
    """Whether ``item`` already describes this source version rendered with this recipe."""
    return (
        item is not None
        and item.get("status") == Outcome.RENDERED
        and item.get("source_etag") == etag
        and item.get("recipe") == recipe
    )


def get(dynamodb: Any, table: str, key: str) -> dict[str, Any] | None:
    """The item of ``key`` (strongly consistent read), or None."""
    response = dynamodb.get_item(TableName=table, Key={"source_key": {"S": key}}, ConsistentRead=True)
    item = response.get("Item")
    return None if item is None else _decode(item)


def put(dynamodb: Any, table: str, item: Mapping[str, Any], *, replacing: str | None = None) -> PutOutcome:
    """Write ``item`` unless the table holds a record of a newer version (see the module doc).

    ``replacing``: the ETag of a same-second record to replace (the tie case), and nothing else.
    """
    values: dict[str, Any] = {":last_modified": item["source_last_modified"]}
    if replacing is None:
        condition, values[":etag"] = _PUT_CONDITION, item["source_etag"]
    else:
        condition, values[":replacing"] = _REPLACE_CONDITION, replacing
    try:
        dynamodb.put_item(
            TableName=table,
            Item=_encode(item),
            ConditionExpression=condition,
            ExpressionAttributeValues=_encode(values),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException as exc:
        existing = _decode(exc.response.get("Item") or {}) or None
        tie = (
            replacing is None
            and existing is not None
            and existing.get("source_last_modified") == item["source_last_modified"]
        )
        return PutOutcome(PutResult.TIE if tie else PutResult.NEWER, existing)
    return PutOutcome(PutResult.WRITTEN)


def set_notified(dynamodb: Any, table: str, key: str, etag: str, token: str) -> bool:
    """Record that ``token`` was announced, if the item still describes ``etag``; False otherwise."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"source_key": {"S": key}},
            UpdateExpression="SET notified = :token",
            ConditionExpression="source_etag = :etag",
            ExpressionAttributeValues=_encode({":token": token, ":etag": etag}),
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def remove(dynamodb: Any, table: str, key: str, *, checked_at: int, keep: bool, processed_at: str) -> bool:
    """The source is gone: delete its item (``keep`` False) or mark it ``deleted`` (renditions kept).

    Only a record of a version not newer than ``checked_at`` (when the source was found missing) is
    touched. Returns False when there was nothing to remove or a newer record is there.
    """
    values = _encode({":checked_at": checked_at})
    try:
        if keep:
            dynamodb.update_item(
                TableName=table,
                Key={"source_key": {"S": key}},
                UpdateExpression="SET #status = :deleted, processed_at = :now",
                ConditionExpression="source_last_modified <= :checked_at",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    **values,
                    **_encode({":deleted": Outcome.DELETED, ":now": processed_at}),
                },
            )
        else:
            dynamodb.delete_item(
                TableName=table,
                Key={"source_key": {"S": key}},
                ConditionExpression="source_last_modified <= :checked_at",
                ExpressionAttributeValues=values,
            )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _encode(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer().serialize(value) for name, value in values.items()}


def _decode(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed attributes to plain values (numbers as int: the catalog only stores integers)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, Decimal):
            return int(value)
        return value

    return {name: plain(_deserializer().deserialize(value)) for name, value in item.items()}


# boto3.dynamodb.types imports the whole of boto3 (s3transfer and multiprocessing with it: ~80 ms of
# the cold start), for a catalog that is off by default: imported on the first catalog item only.
@functools.cache
def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer  # noqa: PLC0415 - see above

    return TypeSerializer()


@functools.cache
def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - see above

    return TypeDeserializer()
