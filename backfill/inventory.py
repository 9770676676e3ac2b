"""`imgproc backfill --from-inventory`: the objects of an S3 Inventory report instead of a listing.

Listing a bucket of hundreds of millions of keys costs one ``ListObjectsV2`` round trip per 1,000 keys,
one after the other; S3 Inventory writes the whole list once a day or week as gzip CSV files, which AWS
recommends for enumerating large buckets. A report is laid out by S3 as::

    <destination-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json
    <destination-prefix>/<source-bucket>/<config-id>/data/<uuid>.csv.gz

``manifest.json`` names the source bucket, the format (``fileFormat``: CSV, ORC or Parquet: only CSV
is read here), the columns (``fileSchema``, e.g. ``Bucket, Key, Size, LastModifiedDate, ETag``) and
the data files (``files``: ``key``, ``size``, ``MD5checksum``). The CSV has no header line, every field
is quoted, and keys are URL-encoded (form encoding: a space is ``+``).

Rows are streamed (one data file at a time, decompressed as read) and yielded with their position,
``DATA_FILE_KEY:LINE``, which is the checkpoint ``--start-after`` takes to resume after that line. Each
data file's MD5 is checked once it has been read to the end.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from backfill.window import Mark

SUPPORTED_FORMAT = "CSV"
READ_CHUNK = 1 << 16


class InventoryError(ValueError):
    """The report cannot be used as given; the message says why, in one line."""


class IncompleteReport(InventoryError):
    """A data file the manifest names is gone (S3 Inventory's files expire or are deleted apart from
    their manifest): no run of this report can list every key, so resuming it is no use."""


LOCAL_PATH_STARTS = ("/", "./", "../", "~")  # what a shell user types for a file, never an S3 key


@dataclass(frozen=True)
class DataFile:
    key: str
    md5: str | None  # MD5checksum of the gzip object, as the manifest gives it


@dataclass(frozen=True)
class Manifest:
    bucket: str  # where the manifest and its data files are (the report's destination bucket)
    key: str
    source_bucket: str  # the bucket the report lists
    columns: tuple[str, ...]
    files: tuple[DataFile, ...]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_location(raw: str, default_bucket: str) -> tuple[str, str]:
    """``s3://bucket/key`` or a bare key (in ``default_bucket``) -> (bucket, key). A local path
    (``/tmp/manifest.json``, ``./m.json``, ``~/m.json``, or a file that exists here) is refused rather
    than read as a key of the source bucket: the report is read from S3 only."""
    if raw.startswith("s3://"):
        bucket, _, key = raw[len("s3://") :].partition("/")
        if not bucket or not key:
            raise InventoryError(f"--from-inventory {raw!r}: give s3://BUCKET/PATH/manifest.json")
        return bucket, key
    if not raw.strip("/"):
        raise InventoryError("--from-inventory: give s3://BUCKET/PATH/manifest.json or a key")
    if raw.startswith(LOCAL_PATH_STARTS) or Path(raw).is_file():
        raise InventoryError(
            f"--from-inventory {raw!r} is a local path: give s3://BUCKET/KEY or a key in the source bucket"
        )
    return default_bucket, raw


def read_manifest(s3: Any, bucket: str, key: str) -> Manifest:
    """The manifest at ``s3://bucket/key``, checked: a CSV report with a ``Key`` column."""
    url = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise InventoryError(f"no inventory manifest at {url}") from None
        raise
    try:
        doc = json.loads(body)
        fmt = str(doc.get("fileFormat", ""))
        columns = tuple(c.strip() for c in str(doc.get("fileSchema", "")).split(","))
        files = tuple(DataFile(str(f["key"]), f.get("MD5checksum")) for f in doc["files"])
        source = str(doc["sourceBucket"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InventoryError(f"{url} is not an S3 Inventory manifest (manifest.json)") from None
    if fmt.upper() != SUPPORTED_FORMAT:
        raise InventoryError(
            f"{url} is an inventory in {fmt or 'an unknown'} format: only CSV inventories can be read "
            "(set the inventory configuration's output format to CSV)"
        )
    if "Key" not in columns:
        raise InventoryError(f"{url}: its fileSchema has no Key column")
    return Manifest(bucket=bucket, key=key, source_bucket=source, columns=columns, files=files)


def parse_start(raw: str, manifest: Manifest) -> tuple[int, int]:
    """``DATA_FILE_KEY:LINE`` (a checkpoint printed by an earlier run) -> (file index, line)."""
    data_key, _, line = raw.rpartition(":")
    index = next((i for i, f in enumerate(manifest.files) if f.key == data_key), None)
    if index is None or not (line.isascii() and line.isdigit()):  # "²".isdigit() is True
        raise InventoryError(
            f"--start-after {raw!r} is not a DATA_FILE:LINE checkpoint of {manifest.url} "
            "(with --from-inventory, give the checkpoint a previous run printed)"
        )
    return index, int(line)


class _Hashing(io.RawIOBase):
    """A readable stream that hashes what passes through (the gzip object, for its MD5)."""

    def __init__(self, body: Any) -> None:
        self.body, self.md5 = body, hashlib.md5(usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        self.md5.update(data)
        buffer[: len(data)] = data
        return len(data)


def _row_object(columns: dict[str, int], row: list[str]) -> dict[str, Any]:
    """One CSV row as a ListObjectsV2 entry (``Key``, ``Size``, ``ETag``, ``LastModified``), plus
    ``Current: False`` for a row that is not the object's current version (versioned reports)."""

    def field(name: str) -> str:
        index = columns.get(name)
        return row[index] if index is not None and index < len(row) else ""

    obj: dict[str, Any] = {"Key": unquote_plus(field("Key")), "Size": int(field("Size") or 0)}
    obj["ETag"] = field("ETag")
    modified = field("LastModifiedDate")
    obj["LastModified"] = datetime.fromisoformat(modified) if modified else None
    if field("IsLatest").lower() == "false" or field("IsDeleteMarker").lower() == "true":
        obj["Current"] = False
    return obj


def rows(
    s3: Any, manifest: Manifest, start: tuple[int, int] | None = None
) -> Generator[tuple[dict[str, Any], Mark], None, None]:
    """Every row after ``start`` (file index, line), in the manifest's order, with its position."""
    columns = {name: i for i, name in enumerate(manifest.columns)}
    first, skip = start or (0, 0)
    for data in manifest.files[first:]:
        try:
            body = s3.get_object(Bucket=manifest.bucket, Key=data.key)["Body"]
        except s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") not in ("NoSuchKey", "NoSuchBucket", "404"):
                raise
            raise IncompleteReport(
                f"s3://{manifest.bucket}/{data.key}, a data file of {manifest.url}, is missing: the report "
                "is incomplete (give a complete report, or list the bucket without --from-inventory)"
            ) from None
        raw = _Hashing(body)
        try:
            with io.TextIOWrapper(
                gzip.GzipFile(fileobj=io.BufferedReader(raw, READ_CHUNK)), "utf-8", newline=""
            ) as text:
                for line, row in enumerate(csv.reader(text), 1):
                    if line <= skip or not row:
                        continue
                    obj = _row_object(columns, row)
                    yield obj, Mark(obj["Key"], f"{data.key}:{line}")
        except (OSError, EOFError, csv.Error, ValueError) as exc:
            if isinstance(exc, InventoryError):
                raise
            raise InventoryError(
                f"s3://{manifest.bucket}/{data.key} cannot be read as gzip CSV: {exc}"
            ) from None
        finally:
            body.close()
        skip = 0
        if data.md5 and raw.md5.hexdigest() != data.md5:
            raise InventoryError(
                f"s3://{manifest.bucket}/{data.key}: MD5 {raw.md5.hexdigest()} differs from the manifest's "
                f"{data.md5} (a truncated or replaced data file)"
            )
