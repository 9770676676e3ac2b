"""Benchmark: how fast one machine enqueues a backfill, by --concurrency, and whether memory is flat.

What is measured is the client: `imgproc backfill`'s own work (the listing's pages parsed, each
key decided, its message built, ``SendMessageBatch`` requests serialised, signed, sent in parallel
and their answers parsed, the checkpoint kept) with a fixed network latency. Every AWS call of the
run goes through botocore as usual up to ``before-send``, where a hook (registered on both clients)
sleeps ``--latency`` ms (default 20, a same-region round trip) and then answers as AWS would:
``ListObjectsV2`` pages of 1,000 generated keys (S3's XML), ``GetObject`` of an S3 Inventory
report of the same keys (for ``--from-inventory``: its manifest and 4 gzip CSV data files, built
before the clock starts), ``HeadObject`` of a rendition (for
``--skip-current``: half of the keys have current renditions, with S3's metadata headers, the others
a 404), ``SendMessageBatch`` every entry accepted (SQS's JSON, with each body's MD5). No server is
involved, so neither moto's SQS (whose cost per send grows with the queue's depth: see
docs/operators.md) nor a server process sharing the 2 cores distorts the client's rate; what is
left out is only the TCP/TLS work of real connections.

Each run is a fresh subprocess (`python bench_backfill.py --run ...`), so that its peak RSS
(``ru_maxrss``) is its own. Printed, for listing, --from-inventory and --skip-current (listing): keys/s
(listed keys/s with --skip-current, half of them skipped as current), its ratio to the first
--concurrency measured in the same session, and peak RSS for two key counts (flat when memory does
not grow with the number of keys).

    python benchmarks/bench_backfill.py [--keys 20000] [--latency 20] [--concurrency 1 4 8 16]
        [--memory-keys 20000 200000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urlparse
from xml.sax.saxutils import escape

import boto3
from botocore.awsrequest import AWSResponse

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import backfill  # noqa: E402
from backfill import inventory  # noqa: E402
from processor.config import Config  # noqa: E402
from processor.renditions import plan_renditions  # noqa: E402
from toolkit.aws import CLIENT_CONFIG  # noqa: E402

SOURCE, DEST, QUEUE = "bench-source", "bench-dest", "https://sqs.us-east-1.amazonaws.com/123456789012/bench"
PREFIX = "original/bench/"
ETAG = "9b2cf535f27731c974343645a3985328"
INVENTORY, MANIFEST = "bench-inventory", f"inventory/{SOURCE}/daily/2026-11-30T01-00Z/manifest.json"
MODES = {"list": "enqueue all", "inventory": "--from-inventory", "skip": "--skip-current"}
BODY_MD5 = hashlib.md5(b"bench").hexdigest()  # botocore does not check it


class _Raw(io.BytesIO):
    """A response body as botocore reads it from urllib3."""

    def stream(self, **_: Any) -> Any:
        while chunk := self.read(1 << 16):
            yield chunk


def key_at(index: int) -> str:
    return f"{PREFIX}k{index:09d}.jpg"


class FakeAws:
    """The ``before-send`` hook: ``latency`` seconds, then the answer AWS would give."""

    def __init__(self, keys: int, latency: float, digests: dict[str, str]) -> None:
        self.keys, self.latency, self.digests = keys, latency, digests
        self.objects: dict[str, bytes] = {}  # GetObject: an inventory report (see inventory())

    def inventory(self, files: int = 4) -> str:
        """An S3 Inventory report of the keys (``files`` gzip CSV data files); its manifest's key."""
        per_file = -(-self.keys // files)
        entries = []
        for n, start in enumerate(range(0, self.keys, per_file)):
            lines = "".join(
                f'"{SOURCE}","{quote_plus(key_at(i))}","{100_000 + i % 1000}",'
                f'"2026-11-01T00:00:00.000Z","{ETAG}","STANDARD"\n'
                for i in range(start, min(self.keys, start + per_file))
            )
            data = gzip.compress(lines.encode())
            key = f"inventory/{SOURCE}/daily/data/{n:04d}.csv.gz"
            self.objects[key] = data
            entries.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
        manifest = {
            "sourceBucket": SOURCE,
            "destinationBucket": f"arn:aws:s3:::{INVENTORY}",
            "version": "2016-11-30",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass",
            "files": entries,
        }
        self.objects[MANIFEST] = json.dumps(manifest).encode()
        return MANIFEST

    def __call__(self, request: Any, **_: Any) -> Any:
        time.sleep(self.latency)
        url = urlparse(request.url)
        if url.hostname and url.hostname.startswith("sqs."):
            status, headers, body = self._send_batch(request.body)
        elif request.method == "HEAD":
            status, headers, body = self._head(unquote(url.path.lstrip("/")))
        elif url.path.lstrip("/") in self.objects:
            status, headers, body = 200, {"content-type": "binary/octet-stream"}, self.objects[url.path[1:]]
        else:
            status, headers, body = self._list(parse_qs(url.query))
        headers = {"x-amz-request-id": uuid.uuid4().hex, "content-length": str(len(body)), **headers}
        return AWSResponse(request.url, status, headers, _Raw(body))

    def _list(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        size = int(query.get("max-keys", ["1000"])[0])
        if "continuation-token" in query:
            start = int(query["continuation-token"][0])
        elif "start-after" in query:
            start = int(query["start-after"][0][len(PREFIX) + 1 : -4]) + 1
        else:
            start = 0
        end = min(self.keys, start + size)
        more = end < self.keys
        contents = "".join(
            f"<Contents><Key>{escape(key_at(i))}</Key><LastModified>2026-11-01T00:00:00.000Z</LastModified>"
            f"<ETag>&quot;{ETAG}&quot;</ETag><Size>{100_000 + i % 1000}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for i in range(start, end)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{SOURCE}</Name><Prefix>{PREFIX}</Prefix><KeyCount>{end - start}</KeyCount>"
            f"<MaxKeys>{size}</MaxKeys><IsTruncated>{'true' if more else 'false'}</IsTruncated>"
            + (f"<NextContinuationToken>{end}</NextContinuationToken>" if more else "")
            + contents
            + "</ListBucketResult>"
        )
        return 200, {"content-type": "application/xml"}, body.encode()

    def _head(self, key: str) -> tuple[int, dict[str, str], bytes]:
        box = key.split("/")[1]  # resized/<box>/bench/k000000001.jpg
        index = int(key.rsplit("k", 1)[1][:-4])
        if index % 2:
            return 404, {}, b""
        meta = {"x-amz-meta-source-etag": ETAG, "x-amz-meta-rendition": self.digests[box]}
        return 200, {"content-type": "image/jpeg", "etag": f'"{ETAG}"', **meta}, b""

    @staticmethod
    def _send_batch(raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Every entry accepted. Kept cheap (the Ids are counted, not parsed; one MD5 for all): this
        is the server's work, and it runs on the client's cores here."""
        ok = [
            {"Id": str(i), "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": BODY_MD5}
            for i in range(raw.count(b'"Id":'))
        ]
        body = json.dumps({"Successful": ok, "Failed": []}).encode()
        return 200, {"content-type": "application/x-amz-json-1.0"}, body


def run_once(keys: int, latency: float, concurrency: int, mode: str) -> dict[str, Any]:
    """One backfill in this process; its rate and this process's peak RSS."""
    config = Config(dest_bucket=DEST, source_bucket=SOURCE)
    digests = {
        c.key.split("/")[1]: c.digest for p in plan_renditions(config, key_at(0)) for c in p.candidates
    }
    hook = FakeAws(keys, latency, digests)
    credentials = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
    s3 = boto3.client("s3", config=CLIENT_CONFIG, **credentials)
    sqs = boto3.client("sqs", config=CLIENT_CONFIG, **credentials)
    for client in (s3, sqs):
        client.meta.events.register("before-send", hook)
    manifest = None
    if mode == "inventory":
        manifest = inventory.read_manifest(s3, INVENTORY, hook.inventory())
    skip_current = mode == "skip"
    options = backfill.Options(
        prefix=PREFIX, skip_current=skip_current, concurrency=concurrency, inventory=manifest
    )
    job = backfill.Backfill(
        s3=s3,
        sqs=sqs,
        target=backfill.Target(bucket=SOURCE, queue_url=QUEUE, region="us-east-1", config=config),
        options=options,
    )
    summary = job.run()
    assert summary.complete, summary
    assert summary.listed == keys, summary
    assert summary.enqueued == (keys // 2 if skip_current else keys), summary
    return {
        "listed": summary.listed,
        "enqueued": summary.enqueued,
        "seconds": summary.elapsed_seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(keys: int, latency: float, concurrency: int, mode: str) -> dict[str, Any]:
    """:func:`run_once` in a fresh subprocess."""
    argv = [sys.executable, __file__, "--run", json.dumps([keys, latency, concurrency, mode])]
    done = subprocess.run(
        argv, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000, help="keys per rate run (default 20,000)")
    parser.add_argument("--latency", type=float, default=20.0, help="ms added to every AWS call (default 20)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16], help="default 1 4 8 16")
    parser.add_argument(
        "--memory-keys", type=int, nargs=2, default=[20_000, 200_000], help="key counts for the RSS runs"
    )
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        keys, latency, concurrency, mode = json.loads(args.run)
        print(json.dumps(run_once(keys, latency, concurrency, mode)))
        return 0

    latency = args.latency / 1000
    print(f"{os.cpu_count()} CPUs; {args.latency:g} ms per AWS call; {args.keys:,} keys per run")
    print(f"{'mode':<16} {'concurrency':>11} {'keys/s':>8} {'vs first':>8} {'seconds':>8} {'peak RSS':>9}")
    for mode, label in MODES.items():
        base = None
        for concurrency in args.concurrency:
            result = measure(args.keys, latency, concurrency, mode)
            rate = result["listed"] / result["seconds"]
            base = base or rate
            print(
                f"{label:<16} {concurrency:>11} {rate:>8,.0f} {rate / base:>7.1f}x {result['seconds']:>8.1f}"
                f" {result['rss_mb']:>6.0f} MB",
                flush=True,
            )
    concurrency = max(args.concurrency)
    print(f"\nmemory, enqueue all at --concurrency {concurrency}:")
    print(f"{'keys':>9} {'keys/s':>8} {'peak RSS':>9}")
    for keys in args.memory_keys:
        result = measure(keys, latency, concurrency, "list")
        print(
            f"{keys:>9,} {result['listed'] / result['seconds']:>8,.0f} {result['rss_mb']:>6.0f} MB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
