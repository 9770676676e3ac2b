"""Benchmark: per-record wall time of the real handler when every S3 call costs a round trip.

In Lambda each S3 call takes ~10-30 ms and Lambda bills wall time. This runs
``processor.handler.lambda_handler`` against in-process moto (``mock_aws``: its own work, ~1 ms a
call, then counts in the record's time; ``--server``: a moto server in a child process instead,
whose HTTP handling on this machine costs more than it takes off) with a fixed latency L added to every
S3 call of the handler's own client (a botocore ``before-send`` hook that sleeps L), for: a fresh
render, an idempotent skip (the same event redelivered: every rendition current) and a delete
(``ObjectRemoved``), with 2 and with 5 sizes; and the same with L = 0 (the record's own time). Each
row also says how many S3 calls the record made and in how many sequential round trips (the times
the number of calls in flight rose from zero). Prints medians and the targets:

    skip   <= 1.5 L + 5 ms
    render <= 4 L + (the same render with L = 0) + 5 ms

    python benchmarks/bench_latency.py [--latency-ms 15] [--repeat 7] [--megapixels 12] [--server]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import boto3  # noqa: E402
import imagegen  # noqa: E402
from conftest import s3_body, s3_record, sqs_event, sqs_record  # noqa: E402
from moto import mock_aws  # noqa: E402

from processor import handler  # noqa: E402

REGION = "us-east-1"
SOURCE, DEST = "bench-source", "bench-dest"
SIZES = {
    2: "100x100,300x300",
    5: "100x100,200x200,300x300,640x640,1024x1024",
}
KINDS = ("render", "skip", "delete")


@dataclass
class Latency:
    """The hook on the handler's S3 client: sleeps ``seconds`` per call and counts calls and rounds."""

    seconds: float
    calls: int = 0
    rounds: int = 0
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before_send(self, **_: Any) -> None:
        with self.lock:
            self.calls += 1
            if self.in_flight == 0:
                self.rounds += 1
            self.in_flight += 1
        if self.seconds:
            time.sleep(self.seconds)

    def after_call(self, **_: Any) -> None:
        with self.lock:
            self.in_flight -= 1

    def install(self, s3: Any) -> None:
        # First: moto's in-process stubber answers on before-send too, and the first answer wins.
        s3.meta.events.register_first("before-send.s3", self.before_send)
        s3.meta.events.register("after-call.s3", self.after_call)
        s3.meta.events.register("after-call-error.s3", self.after_call)


@dataclass
class Row:
    sizes: int
    kind: str
    latency_ms: float
    wall_ms: list[float] = field(default_factory=list)
    calls: int = 0
    rounds: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.wall_ms)


# The moto server in a process of its own: like S3's, its work is not on the function's CPU.
SERVER = """
import sys
sys.path.insert(0, {root!r})
from imgproc.embedded import EmbeddedAws
print(EmbeddedAws(port=0).start(), flush=True)
sys.stdin.read()
"""


@contextmanager
def _server(in_process: bool) -> Iterator[str | None]:
    """The endpoint of a moto server in a child process (ends with the block), or None: in-process moto."""
    if in_process:
        yield None
        return
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(root=str(ROOT))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


@contextmanager
def _quiet() -> Iterator[None]:
    """The handler's log lines and EMF documents go to stdout: not into the table."""
    saved = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        try:
            yield
        finally:
            sys.stdout = saved


def _event(key: str, name: str, receive_count: int = 1) -> dict[str, Any]:
    record = sqs_record(s3_body(s3_record(key, event_name=name, bucket=SOURCE)))
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return sqs_event(record)


def measure(
    sizes: int, latency_ms: float, source: bytes, repeat: int, endpoint: str | None
) -> dict[tuple[float, str], Row]:
    """``repeat`` fresh renders, skips and deletes of new keys with ``sizes`` sizes, each with L = 0
    and with L = ``latency_ms`` one after the other (the machine's load drifts alike for both)."""
    rows = {(lat, kind): Row(sizes, kind, lat) for lat in (0.0, latency_ms) for kind in KINDS}
    os.environ.update(
        DEST_BUCKET=DEST, SOURCE_BUCKET=SOURCE, SIZES=SIZES[sizes], LOG_LEVEL="WARNING", CONCURRENCY="4"
    )
    # Fake credentials and region: nothing here may ever reach real AWS.
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    with mock_aws() if endpoint is None else contextlib.nullcontext():
        if endpoint is not None:
            os.environ["AWS_ENDPOINT_URL"] = endpoint  # the handler's clients too
        client = boto3.client("s3", region_name=REGION)  # the benchmark's own: no latency
        for bucket in (SOURCE, DEST):
            if bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                client.create_bucket(Bucket=bucket)
        handler.runtime.cache_clear()
        hook = Latency(0.0)
        hook.install(handler.runtime().s3)
        for i in range(repeat + 1):  # the first round warms the clients and the imaging up: not counted
            for lat in (0.0, latency_ms):
                hook.seconds = lat / 1000
                key = f"original/bench/{sizes}/{i}-{lat:g}.jpg"
                client.put_object(Bucket=SOURCE, Key=key, Body=source)
                events = {
                    "render": _event(key, "ObjectCreated:Put"),
                    "skip": _event(key, "ObjectCreated:Put", receive_count=2),
                    "delete": _event(key, "ObjectRemoved:Delete"),
                }
                for kind in KINDS:
                    if kind == "delete":
                        client.delete_object(Bucket=SOURCE, Key=key)
                    hook.calls = hook.rounds = 0
                    started = time.perf_counter()
                    response = handler.lambda_handler(events[kind], None)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response["batchItemFailures"]:
                        raise SystemExit(f"{kind} failed: {response}")
                    if i:
                        row = rows[lat, kind]
                        row.wall_ms.append(elapsed)
                        row.calls, row.rounds = hook.calls, hook.rounds
        handler.runtime.cache_clear()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--latency-ms", type=float, default=15.0, help="L added to every S3 call (default 15)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="records per row (default 7)")
    parser.add_argument("--megapixels", type=int, choices=(1, 12, 24), default=12, help="source JPEG size")
    parser.add_argument(
        "--server",
        action="store_true",
        help="a moto server in a child process instead of mock_aws in this one",
    )
    args = parser.parse_args()
    if args.latency_ms < 0 or args.repeat < 1:
        parser.error("--latency-ms must be >= 0 and --repeat >= 1")
    width, height = {1: (1155, 866), 12: (4000, 3000), 24: (6000, 4000)}[args.megapixels]
    source = imagegen.photo_jpeg(width, height)
    latency = args.latency_ms

    with _server(not args.server) as endpoint, _quiet():
        results = {sizes: measure(sizes, latency, source, args.repeat, endpoint) for sizes in SIZES}

    print(
        f"per-record wall time of lambda_handler (median of {args.repeat}), {args.megapixels} MP JPEG source"
    )
    where = "moto server in a child process" if args.server else "in-process moto"
    print(f"L = {latency:g} ms per S3 call (0: the record's own time), {where}\n")
    print(f"| sizes | record | calls | round trips | L=0 ms | L={latency:g} ms | target ms | result |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    failed = 0
    for sizes in SIZES:
        for kind in KINDS:
            own, slow = results[sizes][0.0, kind], results[sizes][latency, kind]
            if kind == "skip":
                target: float | None = 1.5 * latency + 5
            elif kind == "render":
                target = 4 * latency + own.median + 5
            else:
                target = None
            verdict = "-" if target is None else ("pass" if slow.median <= target else "FAIL")
            failed += verdict == "FAIL"
            shown = "-" if target is None else f"{target:.1f}"
            print(
                f"| {sizes} | {kind} | {slow.calls} | {slow.rounds} | {own.median:.1f} | {slow.median:.1f} "
                f"| {shown} | {verdict} |"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
