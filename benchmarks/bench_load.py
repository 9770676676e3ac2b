"""Benchmark: how the time to work through a backlog of N images grows with N, and whether the
workers' memory stays flat.

For each size N (default 100, 1000, 5000), on a fresh embedded AWS (moto server, the real template,
default renditions 300x300 + 100x100, 2 poller worker processes): N tiny generated JPEGs (64x48) are
put in the source bucket as an existing archive would be (with the bucket's notifications off, so
no event is sent), then the clock starts, the workers start and ``imgproc backfill`` (the class
behind it, in this process) enqueues the whole backlog; the clock stops when the ingest queue is
empty and every rendition exists ("done s").

By default the backfill runs with ``--max-backlog 100``, as an operator would backfill millions: it
stays 100 messages ahead of the workers. That matters more on the embedded AWS, because moto's SQS
does O(queue depth) work per call (SendMessage evaluates every queue attribute, three of them by a
scan of every message, to read one flag), so a deep queue makes every call slower there, unlike
on real SQS. ``--max-backlog 0`` enqueues everything at once and shows that cost.

Printed per size: images/s; seconds per 1,000 images and its ratio to the smallest size's (1.00
when time grows linearly with work); the handler's own time per record (median, from the workers'
JSON log lines: the pipeline's work, without the queue); the deepest queue seen; the peak RSS of
each worker (``VmHWM`` from ``/proc/<pid>/status``, read before they stop): flat when memory does
not grow with N. ``--budget`` skips sizes predicted (from the previous size's rate) to take longer.

    python benchmarks/bench_load.py [--sizes 100 1000 5000] [--workers 2] [--max-backlog 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402

import backfill  # noqa: E402
from imgproc import local, poller, status  # noqa: E402
from imgproc import workers as workers_  # noqa: E402
from processor.config import Config  # noqa: E402
from toolkit.function import load_function  # noqa: E402

KEY_PREFIX = "original/load/"


def vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status_file:
            for line in status_file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def count_renditions(s3: Any, bucket: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="resized/")
    return sum(len(page.get("Contents", [])) for page in pages)


def handler_durations_ms(log_dir: Path) -> list[float]:
    """Wall time the handler spent on each rendered record, from the workers' JSON log lines."""
    durations = []
    for path in log_dir.glob("worker-*.jsonl"):
        for line in path.read_text().splitlines():
            if '"record.rendered"' in line:
                durations.append(float(json.loads(line)["duration_ms"]))
    return durations


def seed_archive(s3: Any, bucket: str, size: int, images: list[bytes]) -> float:
    """Put ``size`` images in the bucket without an event each, as if they predated the stack."""
    started = time.perf_counter()
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    notifications.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=bucket, Key=f"{KEY_PREFIX}{i:05d}.jpg", Body=images[i % len(images)]
                ),
                range(size),
            )
        )
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)
    return time.perf_counter() - started


def run_size(size: int, workers: int, images: list[bytes], max_backlog: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        options = poller.WorkerOptions(log_dir=Path(tmp) / "logs")
        runtime = local.LocalRuntime(
            port=0, workers=0, stack_name="imgproc", region="us-east-1", overrides={}, options=options
        )
        with runtime:
            s3, sqs = runtime.client("s3"), runtime.client("sqs")
            source, dest = runtime.outputs["SourceBucketName"], runtime.outputs["DestinationBucketName"]
            queue = runtime.outputs["QueueUrl"]
            seed_seconds = seed_archive(s3, source, size, images)
            fn = load_function(runtime.client("lambda"), runtime.outputs["FunctionName"])
            job = backfill.Backfill(
                s3=s3,
                sqs=sqs,
                target=backfill.Target(
                    bucket=source,
                    queue_url=queue,
                    region=runtime.region,
                    config=Config.from_env(fn.environment),
                ),
                options=backfill.Options(prefix=KEY_PREFIX, max_backlog=max_backlog),
                backlog_poll=0.2,
            )
            mapping = poller.load_mapping(runtime.endpoint_url, runtime.region, runtime.outputs)
            consumers = workers_.Poller(mapping, options, workers)

            start = time.perf_counter()
            consumers.start()
            enqueuer = threading.Thread(target=job.run, name="backfill")
            enqueuer.start()
            deepest = 0
            try:
                while True:
                    waiting, in_flight, _ = status.queue_counts(sqs, queue)
                    deepest = max(deepest, waiting + in_flight)
                    line = f"{size}: enqueued {job.summary.enqueued}, queue {waiting} + {in_flight} in flight"
                    if sys.stderr.isatty():
                        print(f"\r  {line} ", end="", file=sys.stderr, flush=True)
                    drained = not enqueuer.is_alive() and waiting + in_flight == 0
                    if drained and count_renditions(s3, dest) >= 2 * size:
                        break
                    time.sleep(0.25)
                done_seconds = time.perf_counter() - start
                peaks = [vm_hwm_mb(pid) or 0.0 for pid in consumers.pids]
            finally:
                job.stop.set()
                enqueuer.join()
                consumers.stop()
            if sys.stderr.isatty():
                print(file=sys.stderr)
            if job.summary.enqueued != size:
                raise SystemExit(f"backfill enqueued {job.summary.enqueued} of {size} keys")
            durations = handler_durations_ms(Path(tmp) / "logs")
    return {
        "size": size,
        "seed_s": seed_seconds,
        "done_s": done_seconds,
        "per_s": size / done_seconds,
        "s_per_1000": done_seconds / size * 1000,
        "handler_ms_median": statistics.median(durations) if durations else float("nan"),
        "deepest": deepest,
        "peak_mb": max(peaks),
        "peak_min_mb": min(peaks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--workers", type=int, default=2, help="poller worker processes (default 2)")
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=100,
        help="the backfill's --max-backlog (default 100); 0: enqueue everything at once",
    )
    parser.add_argument("--budget", type=float, default=600, help="skip sizes predicted to take longer (s)")
    args = parser.parse_args()

    images = [imagegen.photo_jpeg(64, 48, seed=i) for i in range(50)]
    pacing = f"--max-backlog {args.max_backlog}" if args.max_backlog else "no --max-backlog (all at once)"
    print(
        f"backlog of tiny JPEGs (64x48) drained by {args.workers} workers, enqueued by imgproc backfill "
        f"with {pacing}; renditions 300x300 + 100x100"
    )
    print(
        f"{'images':>7} {'done s':>7} {'images/s':>9} {'s/1000':>7} {'vs linear':>9} "
        f"{'handler ms/record':>18} {'deepest queue':>14} {'worker peak RSS MB':>19}",
        flush=True,
    )
    first: dict[str, float] | None = None
    previous: dict[str, float] | None = None
    for size in sorted(args.sizes):
        if previous is not None and previous["s_per_1000"] * size / 1000 > args.budget:
            predicted = previous["s_per_1000"] * size / 1000
            print(f"{size:>7} skipped: predicted {predicted:.0f} s > --budget {args.budget:.0f} s")
            continue
        r = previous = run_size(size, args.workers, images, args.max_backlog or None)
        first = first or r
        rss = f"{r['peak_min_mb']:.0f}-{r['peak_mb']:.0f}"
        print(  # row by row: a long run that is stopped still shows what it measured
            f"{r['size']:>7} {r['done_s']:>7.1f} {r['per_s']:>9.1f} {r['s_per_1000']:>7.1f} "
            f"{r['s_per_1000'] / first['s_per_1000']:>8.2f}x {r['handler_ms_median']:>18.1f} "
            f"{r['deepest']:>14} {rss:>19}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
