"""S3 I/O at the edge of the processor: every call takes the boto3 client it uses.

Errors other than "not found" and "changed since we looked" propagate as botocore exceptions;
:func:`processor.errors.classify` turns them into transient errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processor.errors import ImageTooLarge, SourceChanged
from processor.markers import strip_quotes

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_DELETE_BATCH = 1000  # DeleteObjects limit


@dataclass(frozen=True)
class SourceHead:
    etag: str  # without quotes
    size: int
    content_type: str | None
    last_modified: datetime | None = None  # S3's Last-Modified (second precision); orders versions


def _is_status(exc: Exception, codes: frozenset[str]) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code")) in codes


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if _is_status(exc, _NOT_FOUND):
            return None
        raise


def head_source(s3: Any, bucket: str, key: str) -> SourceHead | None:
    """The source's current state, or None when it does not exist (any more)."""
    response = _head(s3, bucket, key)
    if response is None:
        return None
    return SourceHead(
        etag=strip_quotes(response["ETag"]),
        size=int(response["ContentLength"]),
        content_type=response.get("ContentType"),
        last_modified=response.get("LastModified"),
    )


def head_metadata(s3: Any, bucket: str, key: str) -> dict[str, str] | None:
    """A rendition's user metadata (the idempotency marker), or None when it does not exist."""
    response = _head(s3, bucket, key)
    return None if response is None else dict(response.get("Metadata") or {})


def get_rendition(s3: Any, bucket: str, key: str) -> bytes | None:
    """A rendition's bytes (they are small: at most its box), or None when it does not exist."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if _is_status(exc, _NOT_FOUND):
            return None
        raise
    body = response["Body"]
    try:
        return body.read()
    finally:
        body.close()


def _get_pinned(s3: Any, bucket: str, key: str, etag: str, **extra: Any) -> dict[str, Any]:
    """GetObject of exactly the version whose ETag we saw; a newer or deleted one is SourceChanged."""
    try:
        return s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"', **extra)
    except s3.exceptions.ClientError as exc:
        if _is_status(exc, frozenset({"PreconditionFailed", "412", *_NOT_FOUND})):
            raise SourceChanged(f"s3://{bucket}/{key} changed since its HEAD (ETag {etag})") from None
        raise


def get_source_start(s3: Any, bucket: str, key: str, etag: str, length: int) -> bytes:
    """The first ``length`` bytes of exactly the version whose ETag we saw (its header, usually)."""
    response = _get_pinned(s3, bucket, key, etag, Range=f"bytes=0-{length - 1}")
    body = response["Body"]
    try:
        return body.read(length)
    finally:
        body.close()


def get_source(s3: Any, bucket: str, key: str, etag: str, max_bytes: int) -> bytes:
    """Download exactly the version whose ETag we saw; a newer or deleted one is :class:`SourceChanged`."""
    response = _get_pinned(s3, bucket, key, etag)
    body = response["Body"]
    try:
        if int(response.get("ContentLength", 0)) > max_bytes:
            raise ImageTooLarge(f"source is {response['ContentLength']} bytes, limit {max_bytes}")
        data = body.read(max_bytes + 1)
    finally:
        body.close()
    if len(data) > max_bytes:
        raise ImageTooLarge(f"source is over {max_bytes} bytes")
    return data


def put_rendition(
    s3: Any,
    bucket: str,
    key: str,
    data: bytes,
    *,
    content_type: str,
    cache_control: str,
    metadata: Mapping[str, str],
) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType=content_type,
        CacheControl=cache_control,
        Metadata=dict(metadata),
    )


def delete_keys(s3: Any, bucket: str, keys: Iterable[str]) -> None:
    """Delete ``keys`` (missing ones are fine); any per-key error is raised, so the record retries."""
    keys = list(dict.fromkeys(keys))
    for start in range(0, len(keys), _DELETE_BATCH):
        chunk = keys[start : start + _DELETE_BATCH]
        response = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise s3.exceptions.ClientError(
                {"Error": {"Code": first.get("Code", "DeleteFailed"), "Message": first.get("Message", "")}},
                "DeleteObjects",
            )
