"""Benchmark: how the time to process N images grows with N, and whether worker memory stays flat.

For each size N (default 100, 1000, 5000) on a fresh embedded AWS (moto server, the real template,
default renditions 300x300 + 100x100), N tiny generated JPEGs (64x48) are uploaded and the clock runs
until the ingest queue is empty and every rendition exists ("done s"). By default the uploads happen
while the poller's workers run, as in production, so the queue stays shallow; ``--backlog`` uploads
everything first and only then starts the workers (a true backlog: moto's SQS does O(queue depth)
work per call, so on the embedded AWS a deep queue is slower than on real SQS, which is why the
upload time is reported apart). Reports images/s, seconds per 1,000 images (constant when time grows
linearly with work), the handler's own time per record and per 1,000 records (from the workers' log
lines) and the peak RSS of each worker (``VmHWM`` from ``/proc/<pid>/status``, read just before the
workers stop): flat when per-record memory does not grow with N. ``--budget`` skips sizes whose
predicted time (from the previous size's rate) exceeds it.

    python benchmarks/bench_load.py [--sizes 100 1000 5000] [--workers 2] [--budget 600] [--backlog]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402

from imgproc import local, poller  # noqa: E402


def vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def queue_depth(sqs, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def count_renditions(s3, bucket: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="resized/")
    return sum(len(page.get("Contents", [])) for page in pages)


def handler_durations_ms(log_dir: Path) -> list[float]:
    """Wall time the handler spent on each rendered record, from the workers' JSON log lines: the
    pipeline's own work, without the emulator's queue overhead."""
    durations = []
    for path in log_dir.glob("worker-*.jsonl"):
        for line in path.read_text().splitlines():
            if '"record.rendered"' in line:
                durations.append(float(json.loads(line)["duration_ms"]))
    return durations


def run_size(size: int, workers: int, images: list[bytes], *, stream: bool) -> dict[str, float]:
    """One backlog size. ``stream``: upload while the workers run (the queue stays shallow, so the
    emulator's O(depth) SQS cost stays out); otherwise upload everything first, then start them."""
    with tempfile.TemporaryDirectory() as tmp:
        options = poller.WorkerOptions(log_dir=Path(tmp) / "logs")
        runtime = local.LocalRuntime(
            port=0, workers=0, stack_name="imgproc", region="us-east-1", overrides={}, options=options
        )
        with runtime:
            s3, sqs = runtime.client("s3"), runtime.client("sqs")
            source, dest = runtime.outputs["SourceBucketName"], runtime.outputs["DestinationBucketName"]
            queue = runtime.outputs["QueueUrl"]
            mapping = poller.load_mapping(runtime.endpoint_url, runtime.region, runtime.outputs)
            consumers = poller.Poller(mapping, options, workers)

            def upload() -> float:
                started = time.perf_counter()
                with ThreadPoolExecutor(4 if stream else 8) as pool:
                    list(
                        pool.map(
                            lambda i: s3.put_object(
                                Bucket=source, Key=f"original/load/{i:05d}.jpg", Body=images[i % len(images)]
                            ),
                            range(size),
                        )
                    )
                return time.perf_counter() - started

            if stream:
                start = time.perf_counter()
                consumers.start()
                upload_seconds = upload()
            else:
                upload_seconds = upload()
                while queue_depth(sqs, queue)[0] < size:  # moto delivers notifications synchronously
                    time.sleep(0.2)
                start = time.perf_counter()
                consumers.start()
            try:
                expected = 2 * size
                while True:
                    visible, in_flight = queue_depth(sqs, queue)
                    done = count_renditions(s3, dest) if visible + in_flight == 0 else 0
                    print(
                        f"\r  {size}: queue {visible} + {in_flight} in flight",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
                    if done >= expected:
                        break
                    time.sleep(0.25)
                drain_seconds = time.perf_counter() - start
                peaks = [vm_hwm_mb(pid) or 0.0 for pid in consumers.pids]
            finally:
                consumers.stop()
            print(file=sys.stderr)
            durations = handler_durations_ms(Path(tmp) / "logs")
    return {
        "handler_ms_median": statistics.median(durations) if durations else float("nan"),
        "handler_s_per_1000": sum(durations) / 1000 / size * 1000,
        "size": size,
        "upload_s": upload_seconds,
        "drain_s": drain_seconds,
        "per_s": size / drain_seconds,
        "s_per_1000": drain_seconds / size * 1000,
        "peak_mb": max(peaks),
        "peak_min_mb": min(peaks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--workers", type=int, default=2, help="poller worker processes (default 2)")
    parser.add_argument("--budget", type=float, default=600, help="skip sizes predicted to drain slower (s)")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="upload everything before the workers start (a true backlog: on the embedded AWS its "
        "SQS costs grow with queue depth); default: upload while they run",
    )
    args = parser.parse_args()

    images = [imagegen.photo_jpeg(64, 48, seed=i) for i in range(50)]
    mode = "uploaded first, then drained" if args.backlog else "uploaded while the workers run"
    print(f"tiny JPEGs (64x48), {mode}; renditions 300x300 + 100x100, {args.workers} workers")
    print(
        f"{'images':>8} {'upload s':>9} {'done s':>8} {'images/s':>9} {'s/1000':>7} "
        f"{'handler ms/record':>18} {'handler s/1000':>15} {'worker peak RSS MB':>19}",
        flush=True,
    )
    previous: dict[str, float] | None = None
    for size in sorted(args.sizes):
        if previous is not None and previous["s_per_1000"] * size / 1000 > args.budget:
            predicted = previous["s_per_1000"] * size / 1000
            print(
                f"{size:>8} skipped: predicted {predicted:.0f} s > --budget {args.budget:.0f} s", flush=True
            )
            continue
        r = previous = run_size(size, args.workers, images, stream=not args.backlog)
        rss = f"{r['peak_min_mb']:.0f}-{r['peak_mb']:.0f}"
        print(  # row by row: a long run that is stopped still shows what it measured
            f"{r['size']:>8} {r['upload_s']:>9.1f} {r['drain_s']:>8.1f} {r['per_s']:>9.1f} "
            f"{r['s_per_1000']:>7.1f} {r['handler_ms_median']:>18.1f} "
            f"{r['handler_s_per_1000']:>15.1f} {rss:>19}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
