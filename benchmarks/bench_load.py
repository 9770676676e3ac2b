"""Benchmark: how draining a backlog grows with its size, and whether worker memory stays flat.

For each backlog size N (default 100, 1000, 5000) on a fresh embedded AWS (moto server, the real
template, default renditions 300x300 + 100x100): start the runtime with *no* workers, upload N tiny
generated JPEGs (64x48) so that N S3 notifications wait on the ingest queue, then start the poller's
worker processes and time until the queue is drained and every rendition exists. Reports seconds,
images/s, seconds per 1,000 images (constant when time grows linearly with work), the handler's own
time per record and per 1,000 records (from the workers' log lines: the pipeline's work without the
emulator's queue overhead) and the peak RSS of
each worker (``VmHWM`` from ``/proc/<pid>/status``, read just before the workers stop): flat when the
per-record memory does not grow with the backlog.

The upload time is reported separately and not counted: moto's SQS does O(queue depth) work per
call, so filling a deep queue (and the first receives from it) is slower than on real SQS.
``--budget`` skips sizes whose predicted drain time (from the previous size's rate) exceeds it.

    python benchmarks/bench_load.py [--sizes 100 1000 5000] [--workers 2] [--budget 600]
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


def run_size(size: int, workers: int, images: list[bytes]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        options = poller.WorkerOptions(log_dir=Path(tmp) / "logs")
        runtime = local.LocalRuntime(
            port=0, workers=0, stack_name="imgproc", region="us-east-1", overrides={}, options=options
        )
        with runtime:
            s3, sqs = runtime.client("s3"), runtime.client("sqs")
            source, dest = runtime.outputs["SourceBucketName"], runtime.outputs["DestinationBucketName"]
            queue = runtime.outputs["QueueUrl"]
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda i: s3.put_object(
                            Bucket=source, Key=f"original/load/{i:05d}.jpg", Body=images[i % len(images)]
                        ),
                        range(size),
                    )
                )
            while queue_depth(sqs, queue)[0] < size:  # moto delivers notifications synchronously
                time.sleep(0.2)
            upload_seconds = time.perf_counter() - start

            mapping = poller.load_mapping(runtime.endpoint_url, runtime.region, runtime.outputs)
            workers_ = poller.Poller(mapping, options, workers)
            start = time.perf_counter()
            workers_.start()
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
                peaks = [vm_hwm_mb(pid) or 0.0 for pid in workers_.pids]
            finally:
                workers_.stop()
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
    args = parser.parse_args()

    images = [imagegen.photo_jpeg(64, 48, seed=i) for i in range(50)]
    results: list[dict[str, float]] = []
    for size in sorted(args.sizes):
        if results:
            predicted = results[-1]["s_per_1000"] * size / 1000
            if predicted > args.budget:
                print(
                    f"skipping {size}: predicted {predicted:.0f} s > budget {args.budget:.0f} s",
                    file=sys.stderr,
                )
                continue
        results.append(run_size(size, args.workers, images))

    print(f"backlog of tiny JPEGs (64x48), renditions 300x300 + 100x100, {args.workers} workers")
    print(
        f"{'backlog':>8} {'upload s':>9} {'drain s':>8} {'images/s':>9} {'s/1000':>7} "
        f"{'handler ms/record':>18} {'handler s/1000':>15} {'worker peak RSS MB':>19}"
    )
    for r in results:
        rss = f"{r['peak_min_mb']:.0f}-{r['peak_mb']:.0f}"
        print(
            f"{r['size']:>8} {r['upload_s']:>9.1f} {r['drain_s']:>8.1f} {r['per_s']:>9.1f} "
            f"{r['s_per_1000']:>7.1f} {r['handler_ms_median']:>18.1f} "
            f"{r['handler_s_per_1000']:>15.1f} {rss:>19}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
