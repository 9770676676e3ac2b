"""What the catalog and the notifications say about a source and its renditions, read back from S3
when they were not rendered just now (a skip repairs the catalog without rendering anything)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processor import catalog, imaging, storage
from processor.errors import CatalogFailed, ProcessingError, SideEffectFailed
from processor.events import ObjectRef
from processor.renditions import Candidate

# Bytes read from the start of a source to identify it when the catalog is repaired on a skip; more
# is read only when its header does not fit (JPEGs with large EXIF/ICC/XMP segments).
_HEADER_BYTES = 256 * 1024


@dataclass(frozen=True)
class Chosen:
    """One configured rendition of a source, as it now is: rendered just now, or already current."""

    candidate: Candidate  # the key and recipe digest in force
    output: imaging.Rendered | None = None


def rendition_entries(s3: Any, bucket: str, chosen: Sequence[Chosen]) -> list[catalog.RenditionEntry]:
    """Each rendition's key, size and bytes: from the output just rendered, or read back from S3."""
    entries = []
    for item in chosen:
        key = item.candidate.key
        fmt = item.candidate.spec.format
        if item.output is not None:
            out = item.output
            entries.append(
                catalog.RenditionEntry(key, out.width, out.height, len(out.data), out.format.value)
            )
            continue
        data = storage.get_rendition(s3, bucket, key)
        if data is None:  # deleted since its HEAD: the retry re-renders it
            raise SideEffectFailed(f"rendition s3://{bucket}/{key} vanished")
        try:
            info = imaging.probe(data)
        except ProcessingError as exc:  # never a reason to dead-letter the source
            raise SideEffectFailed(f"rendition s3://{bucket}/{key}: {exc}") from None
        entries.append(
            catalog.RenditionEntry(key, info.width, info.height, len(data), fmt.value if fmt else info.format)
        )
    return entries


def probe_source(
    s3: Any, ref: ObjectRef, source: storage.SourceHead, max_source_bytes: int
) -> imaging.SourceInfo:
    """The source's format and size from its header (pinned to the ETag seen), no pixel decoded."""
    data = storage.get_source_start(s3, ref.bucket, ref.key, source.etag, _HEADER_BYTES)
    try:
        return imaging.probe(data)
    except ProcessingError as exc:
        if len(data) >= source.size:
            raise CatalogFailed(f"cannot identify the source for the catalog: {exc}") from None
    data = storage.get_source(s3, ref.bucket, ref.key, source.etag, max_source_bytes)
    try:
        return imaging.probe(data)
    except ProcessingError as exc:
        raise CatalogFailed(f"cannot identify the source for the catalog: {exc}") from None
