"""The idempotency marker: S3 user metadata on every rendition saying what it was made from.

A rendition is current when its ``source-etag`` equals the source's ETag now and its ``rendition``
equals the digest of the recipe now; then a redelivered, replayed or backfilled event stops at a HEAD.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

SOURCE_ETAG = "source-etag"
SOURCE_KEY = "source-key"
RENDITION = "rendition"
PROCESSED_AT = "processed-at"


def build(source_key: str, source_etag: str, digest: str, now: datetime | None = None) -> dict[str, str]:
    """Metadata for a rendition written now (values ASCII, as S3 user metadata requires)."""
    return {
        SOURCE_ETAG: strip_quotes(source_etag),
        SOURCE_KEY: quote(source_key),
        RENDITION: digest,
        PROCESSED_AT: utc_timestamp(now),
    }


def is_current(metadata: Mapping[str, str] | None, source_etag: str, digest: str) -> bool:
    """True when ``metadata`` (from a rendition's HEAD) marks it as made from this source and recipe."""
    if not metadata:
        return False
    return metadata.get(SOURCE_ETAG) == strip_quotes(source_etag) and metadata.get(RENDITION) == digest


def source_key_of(metadata: Mapping[str, str] | None) -> str | None:
    """The source key a rendition's ``source-key`` marker names (decoded), or None without one."""
    marked = (metadata or {}).get(SOURCE_KEY)
    return None if marked is None else unquote(marked)


def made_for_another_source(metadata: Mapping[str, str] | None, source_key: str) -> bool:
    """True when ``metadata`` (a rendition's HEAD) says it was made from a source other than
    ``source_key``: two source keys whose renditions share a name (``a`` rendered as PNG and
    ``a.png``; docs/design.md, "Contract: rendition keys"). Such a rendition is the other's to keep."""
    marked = source_key_of(metadata)
    return marked is not None and marked != source_key


def strip_quotes(etag: str) -> str:
    return etag.strip('"')


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 UTC with a ``Z``, second precision: the form every marker and DLQ attribute uses."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
