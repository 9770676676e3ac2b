"""An S3 Inventory report written into (moto's) S3 as S3 lays one out, for `backfill --from-inventory`.

Per the S3 Inventory documentation: in the destination bucket,
``<prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json`` (and ``manifest.checksum``,
the MD5 of manifest.json) and the data files ``<prefix>/<source-bucket>/<config-id>/data/<uuid>.csv.gz``:
gzip CSV without a header line, every field quoted, keys URL-encoded, in the order ``fileSchema`` says.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

SCHEMA = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag", "StorageClass")
STAMP = "2026-11-30T01-00Z"


@dataclass(frozen=True)
class Report:
    url: str  # s3://bucket/.../manifest.json
    data_keys: list[str]  # the data files, in the manifest's order


def row(
    key: str, *, size: int = 1, etag: str = "0" * 32, modified: str = "2026-11-29T12:00:00.000Z"
) -> dict[str, str]:
    return {
        "Key": key,
        "Size": str(size),
        "ETag": etag,
        "LastModifiedDate": modified,
        "StorageClass": "STANDARD",
    }


def put_report(
    s3: Any,
    *,
    dest_bucket: str,
    source_bucket: str,
    files: list[list[dict[str, str]]],
    schema: tuple[str, ...] = SCHEMA,
    file_format: str = "CSV",
    config_id: str = "daily",
    prefix: str = "inventory",
) -> Report:
    """Write the data files (one per list of rows) and the manifest; the bucket must exist."""
    base = f"{prefix}/{source_bucket}/{config_id}"
    entries, data_keys = [], []
    for rows in files:
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for r in rows:
            values = {"Bucket": source_bucket, **r, "Key": quote_plus(r["Key"])}
            writer.writerow([values.get(column, "") for column in schema])
        data = gzip.compress(text.getvalue().encode())
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        s3.put_object(Bucket=dest_bucket, Key=key, Body=data)
        entries.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
        data_keys.append(key)
    manifest = {
        "sourceBucket": source_bucket,
        "destinationBucket": f"arn:aws:s3:::{dest_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1796000000000",
        "fileFormat": file_format,
        "fileSchema": ", ".join(schema),
        "files": entries,
    }
    body = json.dumps(manifest, indent=2).encode()
    s3.put_object(Bucket=dest_bucket, Key=f"{base}/{STAMP}/manifest.json", Body=body)
    s3.put_object(
        Bucket=dest_bucket, Key=f"{base}/{STAMP}/manifest.checksum", Body=hashlib.md5(body).hexdigest()
    )
    return Report(url=f"s3://{dest_bucket}/{base}/{STAMP}/manifest.json", data_keys=data_keys)
